"""Market commands: refreshing an exchange's markets from its public API, and listing the markets in use."""

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import session, settings
from app.errors import shown
from app.services import markets

NEW_SYMBOLS_LISTED = 20
TIME_FORMAT = "%Y-%m-%d %H:%M"


@group("markets")
def markets_group() -> None:
    """The markets (symbols, precision, minimums, fees) Steadyhand checks orders and imports against."""


@markets_group.command("refresh")
@click.option("--exchange", "exchange_id", default="binance", show_default=True, help="ccxt exchange id.")
@with_appcontext
def refresh_command(exchange_id: str) -> None:
    """Load an exchange's spot markets through its public API (no key) and store them with the fetch time.

    The stored markets replace the bundled snapshot for that exchange; a failed refresh keeps the stored ones.
    """
    report = markets.refresh_markets(session(), settings(), exchange_id)
    session().commit()
    click.echo(
        f"{report.exchange_id}: {report.market_count:,} spot markets stored, fetched {report.fetched_at:{TIME_FORMAT}} "
        f"UTC (before: {report.previous}); {len(report.added):,} new, {len(report.removed):,} gone"
    )
    if report.added:
        shown = ", ".join(report.added[:NEW_SYMBOLS_LISTED])
        more = f" and {len(report.added) - NEW_SYMBOLS_LISTED:,} more" if len(report.added) > NEW_SYMBOLS_LISTED else ""
        click.echo(f"  new: {shown}{more}")


@markets_group.command("list")
@click.option("--exchange", "exchange_id", default="binance", show_default=True, help="ccxt exchange id.")
@click.option("--quote", default=None, help="Only markets quoted in this currency, e.g. USDT.")
@with_appcontext
def list_command(exchange_id: str, quote: str | None) -> None:
    """The markets in use for an exchange (stored, else the bundled snapshot): one line per market with its rules."""
    known = markets.known_markets(session(), settings(), exchange_id.strip().lower())
    rules = [known.catalog.rules(symbol) for symbol in known.catalog.symbols]
    if quote:
        rules = [r for r in rules if r.quote == quote.strip().upper()]
    hint = "; refresh them with: flask --app wsgi markets refresh" if known.bundled else ""
    shown_count = f"{len(rules):,} of {len(known.catalog.symbols):,}" if quote else f"{len(rules):,}"
    click.echo(f"{known.exchange_id}: {shown_count} markets, {known.source}{hint}")
    for r in rules:
        click.echo(
            f"  {r.symbol:<16} amount step {shown(r.amount_step):<10} price step {shown(r.price_step):<12} "
            f"min amount {shown(r.min_amount):<10} min notional {shown(r.min_notional)} {r.quote}"
        )
    stored = markets.stored_markets(session())
    others = [s for s in stored if s.exchange_id != known.exchange_id]
    if others:
        listed = ", ".join(f"{s.exchange_id} ({s.market_count:,}, fetched {s.fetched_at:%Y-%m-%d})" for s in others)
        click.echo(f"other stored markets: {listed}")
