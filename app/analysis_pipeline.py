"""The one analysis pipeline, shared by the scheduler, the web UI, the REST API and the CLI:
candles -> indicator context -> signal (budget, cache, provider, validation) -> recorded Analysis."""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ai.budget import BudgetCaps, BudgetScope
from ai.context import WARMUP_BARS, AccountFacts, ContextOptions, PositionFacts, build_context, compute_indicators
from ai.outcome import SignalOutcome
from ai.rules import parse_params
from ai.signals import SignalQuery, SignalServices, propose_signal
from ai.sources import parse_chain
from app.candle_store import market_catalog
from app.config import Settings
from app.market_store import HIGHER_TIMEFRAME, exchange_candles, require_bars, stored_candles
from app.models import Account, Analysis, BudgetLedgerEntry, Position, PositionStatus, User, Watch
from app.trading import TradeResult, decide_and_execute
from exchanges.timeframes import timeframe_duration

# Enough history for every indicator's warm-up plus the bars the context shows.
HISTORY_BARS = WARMUP_BARS + 100
HIGHER_TIMEFRAME_BARS = WARMUP_BARS + 20


class AnalysisInputError(ValueError):
    """The request cannot be analysed as given; the message names the problem."""


@dataclass(frozen=True)
class AnalysisRequest:
    user_id: int
    symbol: str
    timeframe: str
    signals: str  # a source spec or fallback chain, e.g. "deepseek -> rules:sma_cross"
    exchange_id: str = "binance"
    rule_params: Mapping[str, str] = field(default_factory=dict)
    account_id: int | None = None
    watch_id: int | None = None
    market: str = "store"  # "store" (the candle store, offline) or "ccxt:EXCHANGE"
    blind: bool = False
    max_cost_usd: Decimal | None = None
    until: datetime | None = None  # analyse as of this bar in the store (default: the latest)
    # With an explicit account the risk manager judges the signal; `execute` then lets an approved order through.
    execute: bool = False


@dataclass
class AnalysisResult:
    analysis: Analysis
    outcome: SignalOutcome
    trade: TradeResult | None = None


def run_analysis(
    session: Session,
    settings: Settings,
    request: AnalysisRequest,
    services: SignalServices,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AnalysisResult:
    if request.execute and request.account_id is None:
        raise AnalysisInputError("--execute needs --account: orders go to one named account")
    chain = parse_chain(request.signals)
    rule_params = _rule_params(chain, request.rule_params)
    timeframe_duration(request.timeframe)
    rules = market_catalog(settings.data_dir, request.exchange_id).rules(request.symbol)
    user = session.get(User, request.user_id)
    if user is None:
        raise AnalysisInputError(f"no user #{request.user_id}")
    watch = _owned(session, Watch, request.watch_id, user.id)
    account = _account(session, user.id, request.account_id or (watch.account_id if watch else None))

    candles = _candles(session, settings, request, now())
    require_bars(candles, WARMUP_BARS + 1, f"{request.symbol} {request.timeframe}")
    higher = _higher_timeframe(session, request, candles.index[-1])
    position = session.scalar(
        select(Position).where(
            Position.account_id == account.id, Position.symbol == request.symbol, Position.status == PositionStatus.OPEN
        )
    )
    context = build_context(
        compute_indicators(candles),
        len(candles) - 1,
        PositionFacts(position.quantity, position.entry_price) if position else None,
        AccountFacts(
            equity=account.current_balance
            + (position.quantity * Decimal(str(candles["close"].iloc[-1])) if position else 0),
            free_quote=account.current_balance,
            quote_currency=account.quote_currency,
            min_order_notional=rules.min_notional,
        ),
        ContextOptions(symbol=request.symbol, timeframe=request.timeframe, blind=request.blind),
        higher_timeframe=compute_indicators(higher) if higher is not None else None,
    )
    caps = BudgetCaps(
        per_request=request.max_cost_usd or (watch.max_cost_per_call_usd if watch else None),
        user_daily=user.daily_budget_usd,
        user_monthly=user.monthly_budget_usd,
        watch_daily=watch.daily_budget_usd if watch else None,
    )
    query = SignalQuery(context, candles, BudgetScope(user.id, watch.id if watch else None), caps, rule_params)
    outcome = propose_signal(chain, query, services)
    analysis = _record(request, user.id, account.id, watch, context.bar_time, outcome)
    session.add(analysis)
    session.flush()
    if outcome.ledger_entry_ids:
        session.execute(
            update(BudgetLedgerEntry)
            .where(BudgetLedgerEntry.id.in_(outcome.ledger_entry_ids))
            .values(analysis_id=analysis.id)
        )
    session.commit()
    trade = None
    if request.account_id is not None:
        bar = {name: Decimal(str(candles[name].iloc[-1])) for name in ("open", "high", "low", "close")}
        trade = decide_and_execute(session, settings, account, analysis, outcome.signal, bar, request.execute, now)
    return AnalysisResult(analysis, outcome, trade)


def _rule_params(chain: list, raw: Mapping[str, str]) -> dict[str, Any]:
    strategies = [spec.strategy for spec in chain if spec.kind == "rules"]
    if raw and not strategies:
        raise AnalysisInputError("--param only applies to a rules:STRATEGY signal source")
    return parse_params(strategies[0], dict(raw)) if strategies else {}


def _owned[T](session: Session, model: type[T], record_id: int | None, user_id: int) -> T | None:
    if record_id is None:
        return None
    record = session.get(model, record_id)
    if record is None or record.user_id != user_id:
        raise AnalysisInputError(f"no {model.__name__.lower()} #{record_id} for this user")
    return record


def _account(session: Session, user_id: int, account_id: int | None) -> Account:
    """The given account, or the user's first one: the context always describes a real account."""
    if account_id is not None:
        return _owned(session, Account, account_id, user_id)
    account = session.scalar(select(Account).where(Account.user_id == user_id).order_by(Account.id).limit(1))
    if account is None:
        raise AnalysisInputError("this user has no account: create one (or run seed-demo) and pass --account ID")
    return account


def _candles(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> pd.DataFrame:
    if request.market == "store":
        return stored_candles(
            session, request.exchange_id, request.symbol, request.timeframe, HISTORY_BARS, request.until
        )
    if request.market.startswith("ccxt:"):
        if request.until is not None:
            raise AnalysisInputError("--until works with the candle store only")
        return exchange_candles(settings, request.market, request.symbol, request.timeframe, HISTORY_BARS, now)
    raise AnalysisInputError(f"unknown market {request.market!r} (use store or ccxt:EXCHANGE)")


def _higher_timeframe(session: Session, request: AnalysisRequest, last_open: pd.Timestamp) -> pd.DataFrame | None:
    """Higher-timeframe candles from the store, if it has enough of them (the context builder keeps it causal)."""
    higher = HIGHER_TIMEFRAME.get(request.timeframe)
    if higher is None:
        return None
    frame = stored_candles(
        session, request.exchange_id, request.symbol, higher, HIGHER_TIMEFRAME_BARS, last_open.to_pydatetime()
    )
    return frame if len(frame) > WARMUP_BARS else None


def _record(
    request: AnalysisRequest,
    user_id: int,
    account_id: int,
    watch: Watch | None,
    bar_time: datetime,
    outcome: SignalOutcome,
) -> Analysis:
    usage = outcome.usage
    return Analysis(
        user_id=user_id,
        watch_id=watch.id if watch else None,
        account_id=account_id,
        exchange_id=request.exchange_id,
        symbol=request.symbol,
        timeframe=request.timeframe,
        bar_time=bar_time,
        signal_source=request.signals,
        provider=outcome.provider,
        model=outcome.model,
        prompt_version=outcome.prompt_version,
        schema_version=outcome.schema_version,
        cache_key=outcome.cache_key,
        status=outcome.status,
        error_code=outcome.reasons[0].code if outcome.reasons else None,
        error_message="; ".join(reason.message for reason in outcome.reasons) or None,
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_usd=outcome.cost_usd,
        original_cost_usd=outcome.original_cost_usd,
        latency_ms=outcome.latency_ms,
        cached=outcome.cached,
        raw_response=json.dumps(outcome.raw_responses) if outcome.raw_responses else None,
        signal=outcome.signal.model_dump(mode="json"),
    )
