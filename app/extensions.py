"""Flask extension singletons, bound to an app in create_app()."""

from typing import TYPE_CHECKING, cast

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Session

# Named constraints let Alembic alter and drop them on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])

# The models' base class. At run time it is `db.Model`, which Flask-SQLAlchemy builds from `Base` (same metadata and
# registry, plus its table naming and bind mixins) but types as Any; mypy sees `Base`, so every model is typed.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


def db_session() -> Session:
    """The session of the current request, command or job, as the `Session` every service takes."""
    # cast: `db.session` is a scoped_session, no Session subclass, yet it proxies every Session method to this app
    # context's session, and a service calls only those.
    return cast(Session, db.session)
