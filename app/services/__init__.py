"""The use-cases, one module per noun, shared by every front end (CLI, scheduler, web pages, REST API).

Each takes a SQLAlchemy `Session`, the `Settings`, typed input and, where time matters, a `Clock`; each returns
plain results or raises a kind of `app.errors.ServiceError`. Services never import flask, flask_login, click or
werkzeug.

Transactions: a service that only writes the database leaves the commit to its caller (one unit of work per
command, request or job run). A service that talks to an exchange or a provider commits at each step that must
survive a crash (the analysis before the order, the order row before it is sent, the fill when it is known) and
says so in its docstring.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

__all__ = ["Clock", "Session", "system_clock"]

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
