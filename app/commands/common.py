"""What every command shares: service errors as one line and exit 1, the acting user, KEY=VALUE options."""

import functools
from typing import Any

import click

from app import current_settings
from app.config import Settings
from app.errors import ServiceError
from app.extensions import db_session
from app.models import User
from app.services import Session
from app.services.users import resolve_user


def session() -> Session:
    return db_session()


def settings() -> Settings:
    return current_settings()


def acting_user(email: str | None) -> User:
    """The user named by email, or the only user there is."""
    return resolve_user(db_session(), email)


def parse_key_values(raw: tuple[str, ...], option: str) -> dict[str, str]:
    params = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f'"{item}" is not KEY=VALUE', param_hint=option)
        params[key.strip()] = value.strip()
    return params


def one_line_errors(command: click.Command) -> None:
    """Make `command` (and, for a group, every subcommand) print a `ServiceError` as one line and exit 1."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            one_line_errors(sub)
    if command.callback is None:
        return
    callback = command.callback

    @functools.wraps(callback)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except ServiceError as error:
            # Leaving the app context removes the session, which rolls back what the unit of work had written.
            raise click.ClickException(error.message + _option_hint(command, error.field)) from None

    command.callback = guarded


def _option_hint(command: click.Command, field: str | None) -> str:
    """Services name fields (`max_cost`); on the command line the user types options (`--max-cost`)."""
    if not field:
        return ""
    wanted = "--" + field.replace("_", "-")
    for param in command.params:
        if wanted in param.opts or param.name == field:
            if isinstance(param, click.Argument):
                return f" [{param.human_readable_name}]"  # its metavar, else its name in capitals
            return f" [{param.opts[0]}]"
    return ""
