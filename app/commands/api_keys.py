"""`create-api-key` and `api-key list | revoke`: keys for the REST API, shown once, stored as a hash only."""

from decimal import Decimal, InvalidOperation

import click
from flask.cli import with_appcontext

from app.commands.cli import command, group
from app.commands.common import acting_user, session
from app.errors import InvalidInputError, shown
from app.models import ApiKey
from app.services import api_keys, system_clock

USER_HELP = "Whose keys (default: the only user)."


@command("create-api-key")
@click.option("--user", "email", help=USER_HELP)
@click.option("--name", default="api", show_default=True, help="What the key is for, to tell keys apart.")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="read, analyze, trade or admin; repeat for several."
)
@click.option("--expires", "expires_in_days", type=int, help="Days until the key stops working (default: never).")
@click.option(
    "--daily-budget", "daily_budget", metavar="USD", help="The most the key may spend a UTC day (default: no own cap)."
)
@click.option(
    "--monthly-budget",
    "monthly_budget",
    metavar="USD",
    help="The most the key may spend a UTC month (default: no own cap).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="PROVIDER:MODEL",
    help="A model the key may ask, e.g. deepseek:deepseek-flash; repeat for several (default: any).",
)
@with_appcontext
def create_api_key_command(
    email: str | None,
    name: str,
    scopes: tuple[str, ...],
    expires_in_days: int | None,
    daily_budget: str | None,
    monthly_budget: str | None,
    models: tuple[str, ...],
) -> None:
    """Create an API key and print it once, as the last line: only its hash is kept. Its own caps (USD) apply with
    your daily and monthly budget, never instead of them."""
    issued = api_keys.issue_key(
        session(),
        acting_user(email).id,
        name,
        scopes,
        system_clock(),
        expires_in_days,
        daily_budget_usd=_usd(daily_budget, "daily_budget"),
        monthly_budget_usd=_usd(monthly_budget, "monthly_budget"),
        allowed_models=models,
    )
    session().commit()
    click.echo(f"created {_line(issued.key)}")
    click.echo("the key is shown once, now; keep it secret (Authorization: Bearer <key>):")
    click.echo(issued.token)


@group("api-key")
def api_key_group() -> None:
    """Your REST API keys."""


@api_key_group.command("list")
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def list_command(email: str | None) -> None:
    """One line per key, newest first: prefix, name, scopes, caps, allowed models, expiry, last use, revoked."""
    keys = api_keys.list_keys(session(), acting_user(email).id)
    if not keys:
        click.echo("no API keys yet: flask --app wsgi create-api-key --scope read")
    for key in keys:
        click.echo(_line(key))


@api_key_group.command("revoke")
@click.argument("api_key_id", metavar="ID", type=int)
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def revoke_command(api_key_id: int, email: str | None) -> None:
    """Revoke a key: its next request is refused."""
    key = api_keys.revoke_key(session(), acting_user(email).id, api_key_id, system_clock())
    session().commit()
    click.echo(f"revoked {_line(key)}")


def _line(key: ApiKey) -> str:
    expires = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "never expires"
    used = f"last used {key.last_used_at:%Y-%m-%d %H:%M} UTC" if key.last_used_at else "never used"
    if key.last_used_at and key.last_used_address:
        used += f" from {key.last_used_address}"
    revoked = f"  REVOKED {key.revoked_at:%Y-%m-%d %H:%M} UTC" if key.revoked_at else ""
    caps = [
        f"{period} cap ${shown(cap)}"
        for period, cap in (("daily", key.daily_budget_usd), ("monthly", key.monthly_budget_usd))
        if cap is not None
    ]
    models = api_keys.allowed_models(key)
    limits = "".join(f"  {part}" for part in [*caps, f"models {' '.join(models)}" if models else "any model"])
    return f"#{key.id}  {key.prefix}...  {key.name}  scopes {key.scopes}{limits}  {expires}  {used}{revoked}"


def _usd(text: str | None, field: str) -> Decimal | None:
    """An amount in USD as typed; the service checks that it is positive. Raises `InvalidInputError` naming the field
    for text that is not a number."""
    if text is None:
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise InvalidInputError(
            f'{field} must be a positive amount in USD, got "{text}"', field=field, details={"value": text}
        ) from None
