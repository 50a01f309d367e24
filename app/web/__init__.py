"""Web UI (server-rendered pages, one blueprint per noun) and operational endpoints (/healthz, /metrics).

Each page is thin: a form or query string -> a service in `app.services` -> a template in `templates/<noun>/`.
"""

import hmac

from flask import Flask

from app import current_settings
from app.config import Settings
from app.extensions import db_session, login_manager
from app.models import User
from app.services import users
from app.web.common import RowIdConverter


def register_blueprints(app: Flask, settings: Settings) -> None:
    from app.web import errors, formatting, navigation, security
    from app.web.analyses import blueprint as analyses
    from app.web.api_keys import blueprint as api_keys
    from app.web.auth import blueprint as auth
    from app.web.backtests import blueprint as backtests
    from app.web.dashboard import blueprint as dashboard
    from app.web.health import blueprint as health
    from app.web.metrics import blueprint as metrics
    from app.web.orders import blueprint as orders
    from app.web.positions import blueprint as positions
    from app.web.scorecard import blueprint as scorecard
    from app.web.settings import blueprint as settings_pages
    from app.web.usage import blueprint as usage
    from app.web.watches import blueprint as watches

    # Before any page binds its rules. The API keeps `<int:...>`: its own validation answers 422 naming the field.
    app.url_map.converters["id"] = RowIdConverter
    security.secure(app, settings)
    errors.register(app)
    formatting.register(app)
    navigation.register(app)
    app.context_processor(lambda: {"replay_label": current_settings().scheduler.market == "replay"})
    for blueprint in (auth, dashboard, watches, analyses, positions, orders, backtests, scorecard, usage):
        app.register_blueprint(blueprint)
    for blueprint in (settings_pages, api_keys, health, metrics):
        app.register_blueprint(blueprint)


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    """The active user of a session id made by `User.get_id`; None (signed out) when the password has changed since,
    or for any other shape."""
    user_id, _, fingerprint = session_id.partition(":")
    if not user_id.isdigit() or not fingerprint:
        return None
    user = users.active_user(db_session(), int(user_id))
    if user is None or not hmac.compare_digest(user.password_fingerprint(), fingerprint):
        return None
    return user
