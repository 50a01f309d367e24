"""`analyze`: one signal for a symbol, printed for people or as JSON for scripts."""

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from ai.outcome import AnalysisStatus
from ai.signal import Signal
from app import current_settings
from app.analysis_pipeline import AnalysisRequest, AnalysisResult, run_analysis
from app.extensions import db
from app.models import User
from app.signal_services import signal_services
from app.trading import TradeResult
from exchanges.market_data import MarketDataError

# Bad input of every kind (unknown symbol, timeframe, source, model, parameter, too few candles) is a
# ValueError naming the problem; market data that cannot be fetched is the other expected failure.
INPUT_ERRORS = (ValueError, MarketDataError)


@click.command("analyze")
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
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]),
    help="Analyse as of this bar open time (UTC) in the candle store.",
)
@click.option("--blind/--no-blind", default=False, help="Hide ticker and dates, rebase prices to 100.")
@click.option("--execute", is_flag=True, help="Place the order if the risk manager approves (needs --account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def analyze_command(
    symbol: str, email: str | None, params: tuple[str, ...], max_cost: str | None, **options: object
) -> None:
    """Ask the signal source for one BUY/SELL/HOLD signal on SYMBOL and record it."""
    until = options.pop("until")
    as_json = options.pop("as_json")
    request = AnalysisRequest(
        user_id=resolve_user(email).id,
        symbol=symbol.strip().upper(),
        rule_params=parse_key_values(params, "--param"),
        max_cost_usd=_usd(max_cost),
        until=until.replace(tzinfo=UTC) if until else None,
        **options,
    )
    settings = current_settings()
    try:
        result = run_analysis(db.session, settings, request, signal_services(db.session, settings, request.user_id))
    except INPUT_ERRORS as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(_as_json(result)) if as_json else _as_text(result))
    if result.outcome.status in (AnalysisStatus.REFUSED, AnalysisStatus.FAILED):
        raise SystemExit(1)


def resolve_user(email: str | None) -> User:
    """The user named by email, or the only user there is."""
    if email:
        user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"no user with email {email!r}")
        return user
    users = db.session.scalars(select(User).limit(2)).all()
    if len(users) != 1:
        raise click.ClickException("pass --user EMAIL" if users else "no users yet: run `flask --app wsgi seed-demo`")
    return users[0]


def parse_key_values(raw: tuple[str, ...], option: str) -> dict[str, str]:
    params = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        params[key.strip()] = value.strip()
    return params


def _usd(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount in USD", param_hint="--max-cost") from None
    if not value.is_finite() or value <= 0:
        raise click.BadParameter("must be a positive amount in USD", param_hint="--max-cost")
    return value


def _as_json(result: AnalysisResult) -> dict:
    outcome, analysis = result.outcome, result.analysis
    return {
        "analysis_id": analysis.id,
        "status": outcome.status.value,
        "signal": outcome.signal.model_dump(mode="json"),
        "reasons": [{"code": r.code, "message": r.message, "values": r.values} for r in outcome.reasons],
        "provider": outcome.provider,
        "model": outcome.model,
        "source": outcome.source,
        "bar_time": analysis.bar_time.isoformat(),
        "cost_usd": str(outcome.cost_usd),
        "original_cost_usd": str(outcome.original_cost_usd) if outcome.original_cost_usd is not None else None,
        "cached": outcome.cached,
        "usage": {
            "input_tokens": outcome.usage.input_tokens,
            "cache_read_tokens": outcome.usage.cache_read_tokens,
            "cache_write_tokens": outcome.usage.cache_write_tokens,
            "output_tokens": outcome.usage.output_tokens,
            "reasoning_tokens": outcome.usage.reasoning_tokens,
        },
        "latency_ms": outcome.latency_ms,
        "attempts": [{"source": a.source, "result": a.result, "cost_usd": str(a.cost_usd)} for a in outcome.attempts],
        **({"decision": _decision_json(result.trade)} if result.trade else {}),
    }


def _decision_json(trade: TradeResult) -> dict:
    decision, order = trade.decision, trade.order
    return {
        "id": decision.id,
        "approved": decision.approved,
        "reasons": decision.reasons,
        "order_spec": decision.order_spec,
        "order": None
        if order is None
        else {
            "client_order_id": order.client_order_id,
            "status": order.status.value,
            "side": order.side.value,
            "quantity": str(order.quantity),
            "filled": str(order.filled_quantity),
            "average_price": str(order.average_fill_price) if order.average_fill_price is not None else None,
            "fee": str(order.fee),
            "error_code": order.error_code,
        },
        "notes": trade.notes,
    }


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
