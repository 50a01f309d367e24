"""`account`: list accounts, show or change their risk settings, connect a live exchange account."""

from decimal import Decimal

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import current_settings
from app.commands.analysis import resolve_user
from app.extensions import db
from app.models import Account, AccountKind, AuditEvent, ExchangeCredential
from exchanges.vault import CredentialVault, mask_secret
from risk.config import MEANINGS, RiskConfig


@click.group("account")
def account_group() -> None:
    """Trading accounts."""


@account_group.command("list")
@click.option("--user", "email", help="Whose accounts (default: the only user).")
@with_appcontext
def list_command(email: str | None) -> None:
    user = resolve_user(email)
    for account in db.session.scalars(select(Account).where(Account.user_id == user.id).order_by(Account.id)):
        click.echo(
            f"#{account.id}  {account.name}  {account.kind.value} on {account.exchange_id}  "
            f"{account.current_balance:.2f} {account.quote_currency}  {account.trading_state.value}"
        )


@account_group.command("risk")
@click.argument("account_id", type=int)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Change one risk setting.")
@click.option("--reset", "resets", multiple=True, metavar="KEY", help="Back to the default for this setting.")
@with_appcontext
def risk_command(account_id: int, settings: tuple[str, ...], resets: tuple[str, ...]) -> None:
    """Show an account's risk settings, or change them (validated before anything is saved)."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise click.ClickException(f"no account #{account_id}")
    overrides = dict(account.risk_settings)
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        overrides[key.strip()] = value.strip()
    for key in resets:
        overrides.pop(key, None)
    try:
        config = RiskConfig.from_overrides(overrides)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if settings or resets:
        account.risk_settings = overrides
        db.session.add(
            AuditEvent(
                user_id=account.user_id,
                account_id=account.id,
                event="account.risk_settings",
                message="risk settings changed",
                details={"overrides": overrides},
            )
        )
        db.session.commit()
    for key, meaning in MEANINGS.items():
        mark = "*" if key in overrides else " "
        click.echo(f"{mark} {key:<24} {_shown(getattr(config, key)):<10} {meaning}")
    click.echo("(* = set for this account; the rest are defaults)")


@account_group.command("add-live")
@click.option("--name", required=True, help="A name for the account.")
@click.option("--exchange", "exchange_id", default="binance", show_default=True)
@click.option("--sandbox/--no-sandbox", default=False, help="Use the exchange's testnet.")
@click.option("--api-key", prompt=True, hide_input=True, help="Prompted for, so it stays out of shell history.")
@click.option("--api-secret", prompt=True, hide_input=True)
@click.option("--passphrase", default="", prompt="Passphrase (empty if none)", hide_input=True, show_default=False)
@click.option("--user", "email", help="Whose account (default: the only user).")
@with_appcontext
def add_live_command(
    name: str, exchange_id: str, sandbox: bool, api_key: str, api_secret: str, passphrase: str, email: str | None
) -> None:
    """Store exchange keys encrypted and create a live account that trades with them."""
    user = resolve_user(email)
    vault = CredentialVault(current_settings().encryption_keys)
    credential = ExchangeCredential(
        user_id=user.id,
        exchange_id=exchange_id,
        label=name,
        api_key_encrypted=vault.encrypt(api_key.strip()),
        api_secret_encrypted=vault.encrypt(api_secret.strip()),
        passphrase_encrypted=vault.encrypt(passphrase) if passphrase else None,
        api_key_hint=mask_secret(api_key.strip()),
        sandbox=sandbox,
    )
    db.session.add(credential)
    db.session.flush()
    account = Account(
        user_id=user.id,
        name=name,
        kind=AccountKind.LIVE,
        exchange_id=exchange_id,
        credential_id=credential.id,
        starting_balance=Decimal(0),
        current_balance=Decimal(0),
        peak_equity=Decimal(0),
    )
    db.session.add(account)
    db.session.commit()
    where = f"{exchange_id} (sandbox)" if sandbox else exchange_id
    click.echo(
        f"live account #{account.id} on {where} with key {credential.api_key_hint}; "
        f"run `flask --app wsgi reconcile --account {account.id}` to load its balances"
    )


def _shown(value: object) -> str:
    if value is None:
        return "off"
    if isinstance(value, tuple):
        return ",".join(value) or "all"
    return str(value)
