"""`backtest`: run a signal source over history with the live risk manager and paper accounting."""

import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from app.commands.cli import command
from app.commands.common import acting_user, parse_key_values, session, settings
from app.schemas.backtests import BacktestResultOut
from app.services import backtests
from app.services.backtests import BacktestRequest, reports_dir
from app.services.workers import worker_name
from backtest.results import BacktestReport

SHOWN_METRICS = (
    ("total_return_pct", "total return %"),
    ("cagr_pct", "CAGR %"),
    ("max_drawdown_pct", "max drawdown %"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("trades", "trades"),
    ("win_rate_pct", "win rate %"),
    ("profit_factor", "profit factor"),
    ("exposure_pct", "exposure %"),
    ("fees_paid", "fees paid"),
    ("net_return_after_ai_pct", "return after AI cost %"),
)


@command("backtest")
@click.option("--symbol", required=True)
@click.option("--timeframe", default="1h", show_default=True)
@click.option(
    "--data", "data_file", type=click.Path(exists=True, dir_okay=False), help="A candle CSV instead of the store."
)
@click.option("--start", help="First decision day (UTC, YYYY-MM-DD).")
@click.option("--end", help="Last day (UTC, YYYY-MM-DD).")
@click.option(
    "--signals", required=True, help="rules:STRATEGY, replay[:PROVIDER[:MODEL]], deepseek[:MODEL], claude[:MODEL]"
)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A rules strategy parameter.")
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1), help="Decide every N bars.")
@click.option("--fee-rate", default="0.001", show_default=True)
@click.option("--slippage-bps", default="0", show_default=True)
@click.option("--balance", default="100", show_default=True, help="Starting balance in the quote currency.")
@click.option("--risk", "risk_file", type=click.Path(exists=True, dir_okay=False), help="JSON risk-setting overrides.")
@click.option("--cache-only", is_flag=True, help="AI answers from the response cache only: never calls a provider.")
@click.option("--max-cost", help="Refuse a paid run whose estimated AI cost is above this many USD.")
@click.option("--blind/--no-blind", default=None, help="Hide ticker and dates from the model (default: on).")
@click.option("--allow-gaps", is_flag=True, help="Run across gaps in the data longer than --max-gap-bars.")
@click.option(
    "--max-gap-bars",
    default=24,
    show_default=True,
    type=click.IntRange(min=0),
    help="The longest gap in the data (missing bars) a window may span without --allow-gaps.",
)
@click.option("--exchange", "exchange_id", default="binance", show_default=True)
@click.option("--user", "email", help="Whose budget pays for AI calls (default: the only user).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def backtest_command(
    symbol: str,
    timeframe: str,
    data_file: str | None,
    start: str | None,
    end: str | None,
    signals: str,
    params: tuple[str, ...],
    every: int,
    fee_rate: str,
    slippage_bps: str,
    balance: str,
    risk_file: str | None,
    cache_only: bool,
    max_cost: str | None,
    blind: bool | None,
    allow_gaps: bool,
    max_gap_bars: int,
    exchange_id: str,
    email: str | None,
    as_json: bool,
) -> None:
    """Backtest a signal source; writes an HTML report, trades CSV and JSON summary under instance/reports/."""
    request = BacktestRequest(
        user_id=acting_user(email).id,
        params=parse_key_values(params, "--param"),
        risk=_risk_overrides(risk_file),
        symbol=symbol,
        timeframe=timeframe,
        data_file=data_file,
        start=start,
        end=end,
        signals=signals,
        every=every,
        fee_rate=fee_rate,
        slippage_bps=slippage_bps,
        balance=balance,
        cache_only=cache_only,
        max_cost=max_cost,
        blind=blind,
        allow_gaps=allow_gaps,
        max_gap_bars=max_gap_bars,
        exchange_id=exchange_id,
    )
    prepared = backtests.prepare(session(), settings(), request)
    # A person is waiting with a progress bar: this process runs it now, recorded RUNNING by it, so no scheduler or
    # worker picks it up meanwhile (and if this process dies, the next worker start marks it failed).
    worker = worker_name()
    record = backtests.record_backtest(session(), prepared, worker=worker)
    session().commit()
    if not as_json:
        _announce(record.id, request, prepared.inputs.preview)
    # With --json the output must be one JSON object: the progress bar goes to a buffer nobody reads.
    # A progress bar is for a person at a terminal; a pipe or --json gets only the result.
    shown = not as_json and sys.stdout.isatty()
    with click.progressbar(length=1000, label="backtesting", file=None if shown else io.StringIO()) as bar:
        done = [0]

        def progress(fraction: float) -> None:
            step = int(fraction * 1000) - done[0]
            if step > 0:
                bar.update(step)
                done[0] += step

        record, report = backtests.run_recorded_backtest(
            session(), settings(), record.id, prepared, progress, worker=worker
        )
    folder = reports_dir(settings(), record.id)
    if as_json:
        click.echo(BacktestResultOut.of(record.id, report, folder).model_dump_json())
        return
    click.echo(_summary(report, record.id, folder))


@command("backtest-delete")
@click.argument("backtest_id", type=int)
@click.option("--user", "email", help="Whose backtest (default: the only user).")
@with_appcontext
def backtest_delete_command(backtest_id: int, email: str | None) -> None:
    """Delete one of your backtests and its report files."""
    backtests.delete_backtest(session(), settings(), acting_user(email).id, backtest_id)
    session().commit()
    click.echo(f"deleted backtest #{backtest_id}")


def _announce(backtest_id: int, request: BacktestRequest, preview: dict[str, Any]) -> None:
    first, last = preview["window"]
    click.echo(
        f"backtest #{backtest_id}: {request.symbol} {request.timeframe} {first} -> {last}, "
        f"{preview['decisions']:,} decision bar(s)"
    )
    if "estimated_cost_usd" in preview:
        cost = "none (cache only)" if not preview["paid"] else f"about ${preview['estimated_cost_usd']}"
        click.echo(f"  AI: {preview['cached_entries']:,} cached answer(s) loaded; estimated cost {cost}")


def _risk_overrides(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise click.ClickException(f"--risk {path}: cannot read it ({error.strerror or error})") from None
    except ValueError as error:
        raise click.ClickException(f"--risk {path}: not a JSON file ({error})") from None
    if not isinstance(overrides, dict):
        raise click.ClickException(f"--risk {path}: expected a JSON object of risk settings")
    return overrides


def _summary(report: BacktestReport, backtest_id: int, folder: Path) -> str:
    names = ["strategy", *report.baselines]
    columns = [report.metrics, *report.baselines.values()]
    width = max(len(name) for name in names) + 2
    lines = ["", f"{'':<24}" + "".join(f"{name:>{width}}" for name in names)]
    for key, label in SHOWN_METRICS:
        lines.append(f"{label:<24}" + "".join(f"{_shown(column.get(key)):>{width}}" for column in columns))
    ai = report.ai
    if ai.decisions:
        lines.append(
            f"\nAI: {ai.decisions:,} decisions, {ai.cache_hits:,} cache hits, {ai.cache_misses:,} misses, "
            f"cost ${ai.cost_usd:.6f}"
        )
    lines += [f"\nwarning: {warning}" for warning in report.warnings]
    if report.gaps:
        lines.append(
            f"\n{len(report.gaps)} gap(s) in the data: {sum(g['missing_bars'] for g in report.gaps):,} bars missing"
        )
    lines.append(f"\nbacktest #{backtest_id}: {folder / 'report.html'} (trades.csv, summary.json beside it)")
    return "\n".join(lines)


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
