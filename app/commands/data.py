"""Data commands: importing candles and seeding the local demo."""

from pathlib import Path

import click
from flask.cli import with_appcontext

from app.commands.cli import command
from app.commands.common import session, settings
from app.services.demo import DemoSeedReport, seed_demo
from app.services.markets import CandleFileImport, ImportReport, import_candle_file

GAPS_LISTED = 10
TIME_FORMAT = "%Y-%m-%d %H:%M"


@command("import-candles")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--symbol", required=True, help="Unified symbol, e.g. BTC/USDT.")
@click.option("--timeframe", required=True, help="Candle length, e.g. 1h or 1d.")
@click.option("--exchange", "exchange_id", default="binance", show_default=True, help="Whose market the candles are.")
@with_appcontext
def import_candles_command(file: Path, symbol: str, timeframe: str, exchange_id: str) -> None:
    """Import an OHLCV CSV (timestamp as Unix open time in s, ms, µs or ns; open, high, low, close, volume).

    Re-importing the same file adds nothing; the whole file is imported or none of it. Candles that have not closed
    yet are left out.
    """
    request = CandleFileImport(file, exchange_id, symbol.strip().upper(), timeframe)
    report = import_candle_file(session(), settings(), request)
    session().commit()
    click.echo(f"{file}: {_describe(report)}")
    if report.unclosed_dropped and report.checked_at is not None:
        click.echo(
            f"  note: {report.unclosed_dropped} candle(s) not closed yet at {report.checked_at:{TIME_FORMAT}} UTC "
            "were left out"
        )
    _echo_details(report)


@command("seed-demo")
@click.option("--reset-password", is_flag=True, help="Give the demo user a new password.")
@with_appcontext
def seed_demo_command(reset_password: bool) -> None:
    """Create the demo user, a 100 USDT paper account, BTC/USDT and ETH/USDT watches, and import the bundled candles."""
    echo_seed(seed_demo(session(), settings(), reset_password=reset_password))


def echo_seed(report: DemoSeedReport) -> None:
    """Commit the seeded demo and say what was created and how to sign in."""
    session().commit()
    for imported in report.imports:
        click.echo(f"candles {_describe(imported)}")
    for skipped in report.unchanged:
        click.echo(
            f"candles {skipped.exchange_id} {skipped.symbol} {skipped.timeframe} {skipped.file_name}: "
            f"already imported (unchanged), {skipped.rows:,} rows not read again"
        )
    created = [
        "user" if report.created_user else None,
        "paper account (100 USDT)" if report.created_account else None,
        f"{report.created_watches} watch(es)" if report.created_watches else None,
    ]
    created_text = ", ".join(part for part in created if part) or "nothing new (already seeded)"
    click.echo(f"demo: created {created_text}")
    click.echo("")
    click.echo(f"  Sign in as  {report.email}")
    if report.password is not None:
        click.echo(f"  password    {report.password}")
    else:
        click.echo("  password    (changed since seeding; run seed-demo --reset-password for a new one)")


def _describe(report: ImportReport) -> str:
    gaps = f"{len(report.gaps)} gap(s), {report.missing_bars} missing bar(s)" if report.gaps else "no gaps"
    return (
        f"{report.exchange_id} {report.symbol} {report.timeframe} "
        f"{report.first:{TIME_FORMAT}} -> {report.last:{TIME_FORMAT}} UTC: "
        f"{report.rows_read:,} read, {report.inserted:,} new, {report.already_stored:,} already stored; {gaps}"
    )


def _echo_details(report: ImportReport) -> None:
    for gap in report.gaps[:GAPS_LISTED]:
        click.echo(
            f"  gap: {gap.first_missing:{TIME_FORMAT}} -> {gap.last_missing:{TIME_FORMAT}} UTC "
            f"({gap.missing_bars} bar(s) missing)"
        )
    if len(report.gaps) > GAPS_LISTED:
        click.echo(f"  ... and {len(report.gaps) - GAPS_LISTED} more gap(s)")
    if report.zero_volume_bars:
        click.echo(f"  {report.zero_volume_bars} zero-volume bar(s) kept as recorded (exchange downtime)")
    if report.conflicting:
        click.echo(
            f"  warning: {len(report.conflicting)} row(s) differ from the stored candles and were not changed "
            f"(first at {report.conflicting[0]:{TIME_FORMAT}} UTC)",
            err=True,
        )
