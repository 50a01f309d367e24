"""`account`: list accounts, show or change their risk settings and trading state, resume trading, connect a live
exchange account and choose the exchange URL it talks to."""

from decimal import Decimal

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import acting_user, parse_key_values, session, settings
from app.models import PositionStatus
from app.services import account_opening, accounts, positions, system_clock
from app.services.account_opening import NewLiveAccount
from app.services.accounts import RiskChange, RiskView
from app.services.credentials import ExchangeKeys


@group("account")
def account_group() -> None:
    """Trading accounts."""


@account_group.command("list")
@click.option("--user", "email", help="Whose accounts (default: the only user).")
@with_appcontext
def list_command(email: str | None) -> None:
    user = acting_user(email)
    for account in accounts.list_accounts(session(), user.id):
        via = f" via {account.exchange_base_url}" if account.exchange_base_url else ""
        click.echo(
            f"#{account.id}  {account.name}  {account.kind.value} on {account.exchange_id}{via}  "
            f"{account.current_balance:.2f} {account.quote_currency}  {account.trading_state.value}"
        )


@account_group.command("positions")
@click.argument("account_id", type=int)
@click.option("--user", "email", help="Whose account (default: the only user).")
@with_appcontext
def positions_command(account_id: int, email: str | None) -> None:
    """Open positions and the latest closed ones, with dust, unvalued fees and failed exits."""
    view = positions.account_positions(session(), acting_user(email).id, account_id)
    quote = view.account.quote_currency
    clock = f"{view.clock:%Y-%m-%d %H:%M} UTC" if view.clock else "no bar processed yet"
    click.echo(
        f"#{view.account.id}  {view.account.name}: {view.account.current_balance:.2f} {quote} free; clock {clock}"
    )
    if not view.positions:
        click.echo("no positions yet")
    for item in view.positions:
        row = item.position
        if row.status is PositionStatus.OPEN:
            levels = f"stop {_price(row.stop_loss)}, take profit {_price(row.take_profit)}"
            click.echo(
                f"{row.symbol:<10} open    {row.quantity.normalize():f} at {_price(row.entry_price)} {quote} "
                f"(cost {row.cost_basis:.2f} {quote}), {levels}; opened {row.opened_at:%Y-%m-%d %H:%M} UTC"
            )
        else:
            closed_at = f"{row.closed_at:%Y-%m-%d %H:%M}" if row.closed_at else "?"
            click.echo(
                f"{row.symbol:<10} closed  entry {_price(row.entry_price)} {quote}, realized {row.realized_pnl:+.2f} "
                f"{quote}, fees {row.fees_paid:.2f} {quote}; {row.opened_at:%Y-%m-%d %H:%M} -> {closed_at} UTC"
            )
        for note in item.notes:
            click.echo(f"    {note}")


def _price(value: Decimal | None) -> str:
    """A price with thousands separators and at least two decimals, all it has beyond that (small coins)."""
    if value is None:
        return "none"
    whole, _, decimals = f"{value.normalize():,f}".partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


@account_group.command("risk")
@click.argument("account_id", type=int)
@click.option("--set", "changes", multiple=True, metavar="KEY=VALUE", help="Change one risk setting.")
@click.option("--reset", "resets", multiple=True, metavar="KEY", help="Back to the default for this setting.")
@click.option("--user", "email", help="Whose account (default: the only user).")
@with_appcontext
def risk_command(account_id: int, changes: tuple[str, ...], resets: tuple[str, ...], email: str | None) -> None:
    """Show an account's trading state and risk settings, or change them (validated before anything is saved)."""
    user = acting_user(email)
    if changes or resets:
        change = RiskChange(parse_key_values(changes, "--set"), tuple(key.strip() for key in resets))
        view = accounts.change_risk_settings(session(), settings(), user.id, account_id, change)
        session().commit()
    else:
        view = accounts.risk_view(session(), user.id, account_id)
    _echo_risk(view)


def _echo_risk(view: RiskView) -> None:
    state = view.trading_state.value
    click.echo(f"trading state  {state}" + (f"  ({view.state_reason})" if view.state_reason else ""))
    if view.state_reason:
        click.echo(f"  resume with: flask --app wsgi account resume {view.account.id}")
    for setting in view.settings:
        mark = "*" if setting.overridden else " "
        click.echo(f"{mark} {setting.name:<24} {_shown(setting.value):<10} {setting.meaning}")
    click.echo("(* = set for this account; the rest are defaults)")


@account_group.command("resume")
@click.argument("account_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--user", "email", help="Whose account (default: the only user).")
@with_appcontext
def resume_command(account_id: int, yes: bool, email: str | None) -> None:
    """Let a HALTED or REDUCING account open positions again (shows first why it stopped; audited)."""
    user = acting_user(email)
    view = accounts.risk_view(session(), user.id, account_id)
    if view.state_reason is not None:
        click.echo(f"account #{account_id} is {view.trading_state.value}: {view.state_reason}")
        if not yes:
            click.confirm("Resume trading on this account?", abort=True)
    resumed = accounts.resume_trading(session(), user.id, account_id, system_clock())
    session().commit()
    click.echo(
        f"account #{account_id} is ACTIVE again; drawdown is measured from "
        f"{resumed.peak_equity:.2f} {resumed.account.quote_currency}"
    )


@account_group.command("add-live")
@click.option("--name", required=True, help="A name for the account.")
@click.option(
    "--exchange",
    "exchange_id",
    default="binance",
    show_default=True,
    help="A ccxt exchange id whose markets are stored or bundled (markets refresh --exchange ID).",
)
@click.option("--sandbox/--no-sandbox", default=False, help="Use the exchange's testnet.")
@click.option(
    "--base-url",
    "exchange_base_url",
    help="Send the exchange's API requests to this https://host[:port] (a regional endpoint or proxy) instead; "
    "http only to 127.0.0.1 or localhost, no path or user:password.",
)
@click.option("--api-key", prompt=True, hide_input=True, help="Leave it out to be prompted (out of shell history).")
@click.option("--api-secret", prompt=True, hide_input=True, help="Leave it out to be prompted.")
@click.option(
    "--passphrase",
    default="",
    prompt="Passphrase (empty if none)",
    hide_input=True,
    show_default=False,
    help="Only for exchanges whose API keys have one (e.g. OKX, KuCoin); empty otherwise.",
)
@click.option("--user", "email", help="Whose account (default: the only user).")
@with_appcontext
def add_live_command(
    name: str,
    exchange_id: str,
    sandbox: bool,
    exchange_base_url: str | None,
    api_key: str,
    api_secret: str,
    passphrase: str,
    email: str | None,
) -> None:
    """Store exchange keys encrypted and create a live account that trades with them."""
    user = acting_user(email)
    keys = ExchangeKeys(exchange_id, name, api_key, api_secret, passphrase, sandbox)
    account = account_opening.add_live_account(
        session(), settings(), user.id, NewLiveAccount(name, keys, exchange_base_url)
    )
    session().commit()
    where = f"{exchange_id} (sandbox)" if sandbox else exchange_id
    if account.exchange_base_url:
        where += f" via {account.exchange_base_url}"
    credential = account.credential
    assert credential is not None  # the database refuses a live account without one (live_needs_credential)
    click.echo(
        f"live account #{account.id} on {where} with key {credential.api_key_hint}; "
        f"run `flask --app wsgi reconcile --account {account.id}` to load its balances"
    )


@account_group.command("base-url")
@click.argument("account_id", type=int)
@click.argument("exchange_base_url", metavar="URL", required=False)
@click.option("--clear", is_flag=True, help="Back to the exchange's own URLs.")
@click.option("--user", "email", help="Whose account (default: the only user).")
@with_appcontext
def base_url_command(account_id: int, exchange_base_url: str | None, clear: bool, email: str | None) -> None:
    """Send a live account's exchange requests to URL (https://host[:port]), or back to the default with --clear."""
    if clear == (exchange_base_url is not None):
        raise click.UsageError("give either a URL or --clear")
    user = acting_user(email)
    account = account_opening.change_exchange_base_url(session(), user.id, account_id, exchange_base_url)
    session().commit()
    click.echo(f"account #{account.id} talks to {account.exchange_base_url or f'{account.exchange_id} (default URLs)'}")


def _shown(value: object) -> str:
    if value is None:
        return "off"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, tuple):
        return ",".join(value) or "all"
    return str(value)
