"""Bulk inserts that skip rows already stored (same primary key), on SQLite and PostgreSQL alike."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_ignoring_duplicates(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        insert = _INSERTS[session.get_bind().dialect.name]
        session.execute(insert(model).on_conflict_do_nothing(), list(rows))
