"""The one owned-object lookup: a record of the caller's, or "not found" (also when it is someone else's)."""

from typing import Protocol

from sqlalchemy.orm import Session

from app.errors import NotFoundError


class Owned(Protocol):
    user_id: int


# What a user calls each kind of record in a message.
_NOUNS = {
    "Account": "account",
    "Watch": "watch",
    "Analysis": "analysis",
    "Backtest": "backtest",
    "ApiKey": "api_key",
}


def owned[T: Owned](session: Session, model: type[T], record_id: int, user_id: int) -> T:
    """The `model` row with `record_id` if it belongs to `user_id`.

    Raises `NotFoundError` (field `<noun>_id`) when it is missing or someone else's: the same answer either way, so
    nobody learns what exists.
    """
    record = session.get(model, record_id)
    if record is None or record.user_id != user_id:
        noun = _NOUNS.get(model.__name__, model.__name__.lower())
        raise NotFoundError(f"no {noun} #{record_id}", field=f"{noun}_id", details={"id": record_id})
    return record
