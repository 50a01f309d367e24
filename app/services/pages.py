"""Cursor pages, newest first, in one place: every list the API serves is read through `page_of`."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next_before_id: int | None  # pass as `before_id` for the next page; None: this is the last page


def page_of[T](
    session: Session, query: Select[T], id_column: InstrumentedAttribute[Any], limit: int, before_id: int | None
) -> Page[T]:
    """`limit` rows of `query` with ids below `before_id` (all when None), highest id first, and where the next page
    starts. Keyset pagination: a page costs the same however deep it is, and rows added meanwhile never shift it."""
    if before_id is not None:
        query = query.where(id_column < before_id)
    rows = list(session.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, getattr(items[-1], id_column.key) if more and items else None)
