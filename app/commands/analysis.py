"""`analyze`: one signal for a symbol, printed for people or as JSON for scripts."""

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import click
from flask.cli import with_appcontext

from ai.outcome import AnalysisStatus
from ai.signal import Signal
from app.commands.cli import command
from app.commands.common import acting_user, parse_key_values, session, settings
from app.schemas.analyses import AnalysisOut
from app.services.analyses import AnalysisRequest, AnalysisResult, parse_until, run_analysis
from app.services.credentials import signal_services
from app.services.trading import TradeResult

# Attempts that are not the source's own failure but a reason it was passed over.
_SKIPPED = ("PROVIDER_NOT_CONFIGURED", "SKIPPED_BUDGET_EXCEEDED", "CIRCUIT_OPEN")


@command("analyze")
@click.argument("symbol")
@click.option("--timeframe", default="1h", show_default=True)
@click.option(
    "--signals",
    default="rules:ema_rsi_volume",
    show_default=True,
    help="deepseek[:MODEL], claude[:MODEL], rules:STRATEGY, replay[:PROVIDER[:MODEL]]; chain with '->'.",
)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A rules strategy parameter.")
@click.option("--max-cost", type=str, help="Refuse a paid call that could cost more than this many USD.")
@click.option("--account", "account_id", type=int, help="Account whose balance and position the context shows.")
@click.option("--watch", "watch_id", type=int, help="Analyse for this watch (its budget applies).")
@click.option("--user", "email", help="Whose analysis (default: the only user).")
@click.option("--exchange", "exchange_id", default="binance", show_default=True)
@click.option("--market", default="store", show_default=True, help="store (offline candle store) or ccxt:EXCHANGE.")
@click.option(
    "--until",
    metavar="'YYYY-MM-DD[ HH:MM]'",
    help="Analyse as of this bar open time (UTC) in the candle store.",
)
@click.option("--blind/--no-blind", default=False, help="Hide ticker and dates, rebase prices to 100.")
@click.option("--execute", is_flag=True, help="Place the order if the risk manager approves (needs --account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def analyze_command(
    symbol: str,
    timeframe: str,
    signals: str,
    params: tuple[str, ...],
    max_cost: str | None,
    account_id: int | None,
    watch_id: int | None,
    email: str | None,
    exchange_id: str,
    market: str,
    until: str | None,
    blind: bool,
    execute: bool,
    as_json: bool,
) -> None:
    """Ask the signal source for one BUY/SELL/HOLD signal on SYMBOL and record it."""
    request = AnalysisRequest(
        user_id=acting_user(email).id,
        symbol=symbol.strip().upper(),
        rule_params=parse_key_values(params, "--param"),
        max_cost_usd=_usd(max_cost),
        until=parse_until(until) if until is not None else None,
        timeframe=timeframe,
        signals=signals,
        account_id=account_id,
        watch_id=watch_id,
        exchange_id=exchange_id,
        market=market,
        blind=blind,
        execute=execute,
    )
    services = signal_services(session(), settings(), request.user_id)
    result = run_analysis(session(), settings(), request, services)
    click.echo(json.dumps(AnalysisOut.of(result).to_json()) if as_json else _as_text(result))
    if result.outcome.status in (AnalysisStatus.REFUSED, AnalysisStatus.FAILED):
        raise SystemExit(1)


def _usd(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f'max cost must be an amount in USD, got "{text}"', param_hint="--max-cost") from None
    if not value.is_finite() or value <= 0:
        raise click.BadParameter(f'max cost must be a positive amount in USD, got "{text}"', param_hint="--max-cost")
    return value


def _plain(value: Decimal) -> str:
    """A stored amount without the database's trailing zeros."""
    return format(value.normalize(), "f")


def _price(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _as_text(result: AnalysisResult) -> str:
    outcome, analysis = result.outcome, result.analysis
    signal: Signal = outcome.signal
    usage = outcome.usage
    lines = [
        f"{analysis.symbol} {analysis.timeframe} at {analysis.bar_time:%Y-%m-%d %H:%M} UTC "
        f"via {outcome.source} [{outcome.status.value}]",
        f"  {signal.action.value}  confidence {signal.confidence}  entry {_price(signal.entry_price)}  "
        f"stop {_price(signal.stop_loss)}  target {_price(signal.take_profit)}  horizon {signal.horizon_bars} bar(s)",
        f"  reasoning: {signal.reasoning}",
    ]
    if signal.key_factors:
        lines.append(f"  key factors: {', '.join(signal.key_factors)}")
    lines += [f"  warning: {warning}" for warning in result.warnings]
    lines += [
        f"  skipped {attempt.source}: {attempt.result} ({attempt.detail})"
        if attempt.detail
        else f"  skipped {attempt.source}: {attempt.result}"
        for attempt in outcome.attempts
        if attempt.result in _SKIPPED and attempt.source != outcome.source
    ]
    lines += [f"  reason {reason.code}: {reason.message}" for reason in outcome.reasons]
    if outcome.model is not None and outcome.provider != "rules":
        cache_note = f"cached (original call cost ${outcome.original_cost_usd:.6f})" if outcome.cached else "not cached"
        lines.append(
            f"  cost ${outcome.cost_usd:.6f}; tokens {usage.input_tokens:,} in, {usage.cache_read_tokens:,} cache read,"
            f" {usage.cache_write_tokens:,} cache write, {usage.output_tokens:,} out; {outcome.latency_ms} ms;"
            f" {cache_note}"
        )
    lines.append(f"  recorded as analysis #{analysis.id} ({datetime.now(UTC):%H:%M:%S} UTC)")
    if result.trade is not None:
        lines += _decision_text(result.trade)
    return "\n".join(lines)


def _decision_text(trade: TradeResult) -> list[str]:
    decision, order = trade.decision, trade.order
    lines = [f"  note: {note}" for note in trade.notes]
    lines.append(f"  risk decision #{decision.id}: {'APPROVED' if decision.approved else 'REFUSED'}")
    lines += [f"    {reason['code']}: {reason['message']}" for reason in decision.reasons]
    if order is not None:
        price = f" at {_plain(order.average_fill_price)}" if order.average_fill_price is not None else ""
        error = f" ({order.error_code}: {order.error_message})" if order.error_code else ""
        lines.append(
            f"  order {order.client_order_id}: {order.side.value} {_plain(order.filled_quantity)}/"
            f"{_plain(order.quantity)} {order.symbol}{price}, fee {_plain(order.fee)} {order.fee_currency or ''}"
            f" [{order.status.value}]{error}"
        )
    elif decision.approved:
        lines.append("  not executed: add --execute to place the order")
    return lines
