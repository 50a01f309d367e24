"""What every page blueprint shares: the signed-in user, owned-object lookups that answer 404, and service
errors shown on the form field they concern.

A page never queries the database: it calls `app.services` through these helpers and renders a template.
"""

import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime

from flask import abort, flash
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter

from app import current_settings
from app.errors import InvalidInputError, NotFoundError, ServiceError
from app.extensions import db_session
from app.services import system_clock

__all__ = ["current_settings", "db_session", "now", "owned", "show_error", "user_id"]


def user_id() -> int:
    """The signed-in user's id (views using it are `@login_required`)."""
    return int(current_user.id)


def now() -> datetime:
    """The wall clock in UTC, read once per use-case call."""
    return system_clock()


def owned[T](lookup: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call a service lookup; missing or someone else's object -> the 404 page (both look the same to the user)."""
    try:
        return lookup(*args, **kwargs)
    except NotFoundError:
        abort(404)


def worded(form: FlaskForm | None, message: str) -> str:
    """`message` with the service's input names (`starting_balance`, `max_cost`) in the words the form shows: its
    fields' labels, its `FIELD_ALIASES` (service name -> form field) and its `FIELD_WORDS` (service name -> words)
    for inputs the form names differently (see `reword`)."""
    if form is None:
        return message
    field_words: dict[str, str] = getattr(form, "FIELD_WORDS", {})
    words = {name: str(field.label.text) for name, field in form._fields.items() if name != "csrf_token"}
    words |= {service: words[own] for service, own in getattr(form, "FIELD_ALIASES", {}).items() if own in words}
    return reword(message, words | field_words, prose=set(field_words))


def reword(message: str, words: Mapping[str, str], prose: Collection[str] = ()) -> str:
    """`message` with each input name of `words` replaced by its words, in one pass (words put in are never replaced
    again: "balance" inside "The starting balance"). A name that opens the message takes its words as they are
    ("Starting balance (USDT) must be ..."); inside a sentence a name in `prose` reads in lower case ("the fee
    rate"), another name with an underscore as its label, and a plain word ("name", "email") stays."""
    if not words:
        return message
    names = re.compile(r"\b(" + "|".join(re.escape(name) for name in sorted(words, key=len, reverse=True)) + r")\b")

    def replace(match: re.Match[str]) -> str:
        name, text = match.group(1), words[match.group(1)]
        if match.start() == 0:
            return text
        if name in prose:
            return text[:1].lower() + text[1:]
        return text if "_" in name else name

    return names.sub(replace, message)


def show_error(form: FlaskForm | None, error: ServiceError) -> None:
    """Put a service refusal on the form field it names (kept with what the user typed), else flash it; either way
    in the form's words (see `worded`).

    Service field names are the domain's (`max_cost`, `signals`); a form names its fields the same or lists
    aliases in `FIELD_ALIASES` on the form class.
    """
    message = worded(form, error.message)
    field = None
    if form is not None and error.field:
        name = getattr(form, "FIELD_ALIASES", {}).get(error.field, error.field)
        field = getattr(form, name, None)
    if field is not None and hasattr(field, "errors"):
        # WTForms keeps errors as a tuple after validation; a list lets the page show this one too.
        field.errors = [*field.errors, message]
    else:
        flash(message, "error")


# The largest row id either database can hold (PostgreSQL INTEGER); a larger number names no row.
MAX_ROW_ID = 2_147_483_647


class RowIdConverter(IntegerConverter):
    """`<id:...>`, a row id in a page's URL: a number above `MAX_ROW_ID` does not match, so it is a 404 like any
    other missing row, instead of an integer the database driver cannot bind (SQLite raised OverflowError: a 500)."""

    def __init__(self, map: object, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)  # type: ignore[arg-type]


def before_id(value: str | None) -> int | None:
    """The `before` query value (the row id a page starts below; empty: the first page). `InvalidInputError`
    (field `before`) for anything but a whole number from 1 to `MAX_ROW_ID`."""
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_ROW_ID:
        raise InvalidInputError(f'before must be a row number, got "{value[:40]}"', field="before")
    return int(value)
