"""Web UI and operational endpoints."""

from flask import Flask

from app.extensions import db_session, login_manager
from app.models import User
from app.services import users


def register_blueprints(app: Flask) -> None:
    from app.web.auth import blueprint as auth
    from app.web.health import blueprint as health
    from app.web.home import blueprint as home
    from app.web.metrics import blueprint as metrics

    app.register_blueprint(auth)
    app.register_blueprint(health)
    app.register_blueprint(home)
    app.register_blueprint(metrics)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    return users.active_user(db_session(), int(user_id)) if user_id.isdigit() else None
