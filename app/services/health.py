"""Readiness: can the service reach its database."""

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def database_reachable(session: Session) -> bool:
    """True when a trivial query succeeds; the failure's details go to the (redacted) log only."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.exception("health check: database unreachable")
        session.rollback()
        return False
    return True
