"""Bulk inserts that skip rows already stored (same primary key), on SQLite and PostgreSQL alike."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_duplicates(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    # Each dialect has its own `Insert` with its own `on_conflict_do_nothing`; there is no shared typed one.
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(model).on_conflict_do_nothing(), list(rows))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(model).on_conflict_do_nothing(), list(rows))
    else:
        raise KeyError(dialect)
