"""Opaque cursors for the services' keyset pages (`app.services.pages`)."""

import base64
import binascii

from app.errors import InvalidInputError
from app.services.pages import Page

_PREFIX = "before:"


def before_id(cursor: str | None) -> int | None:
    """The id a `cursor` query parameter stands for; raises `InvalidInputError` (field `cursor`) for one this API did
    not hand out."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        value = int(text[len(_PREFIX) :])
        if not 1 <= value <= 2_147_483_647:
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError(
            f'cursor must be a next_cursor this API returned, got "{cursor[:40]}"', field="cursor"
        ) from None
    return value


def next_cursor[T](page: Page[T]) -> str | None:
    if page.next_before_id is None:
        return None
    return base64.urlsafe_b64encode(f"{_PREFIX}{page.next_before_id}".encode()).decode().rstrip("=")
