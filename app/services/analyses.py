"""The one analysis use-case, shared by the scheduler, the web UI, the REST API and the CLI:
candles -> indicator context -> signal (budget, cache, provider, validation) -> recorded Analysis
-> (with an account) risk decision -> (with `execute`) order."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ai.budget import BudgetCaps, BudgetScope
from ai.context import (
    WARMUP_BARS,
    AccountFacts,
    ContextOptions,
    MarketContext,
    PositionFacts,
    build_context,
    compute_indicators,
)
from ai.models import model_info
from ai.outcome import SignalOutcome
from ai.rules import parse_params
from ai.signals import SignalQuery, SignalServices, propose_signal
from ai.sources import SourceSpec, parse_chain
from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, Analysis, BudgetLedgerEntry, User, Watch
from app.persistence.account_book import open_position
from app.persistence.candles import StoredSeries
from app.services import Clock, markets, system_clock, usage
from app.services.lookup import owned
from app.services.replay import replay_bars, replay_market
from app.services.steps import StepLog
from app.services.trading import TradeResult, check_account_clock, decide_and_execute
from app.services.upkeep import BarSource
from exchanges.candles import Candle, find_gaps
from exchanges.timeframes import timeframe_duration

# Enough history for every indicator's warm-up plus the bars the context shows.
HISTORY_BARS = WARMUP_BARS + 100
HIGHER_TIMEFRAME_BARS = WARMUP_BARS + 20


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
    until: datetime | None = None  # UTC; analyse as of the last bar opened by then in the store (default: latest)
    # With an explicit account the risk manager judges the signal; `execute` then lets an approved order through.
    execute: bool = False


@dataclass
class AnalysisResult:
    analysis: Analysis
    outcome: SignalOutcome
    trade: TradeResult | None = None
    # What the reader should know about the candles the context came from (gaps inside the lookback), one sentence each.
    warnings: list[str] = field(default_factory=list)


def run_analysis(
    session: Session,
    settings: Settings,
    request: AnalysisRequest,
    services: SignalServices,
    now: Clock = system_clock,
    steps: StepLog | None = None,
) -> AnalysisResult:
    """Analyse one symbol for `request.user_id` and record the analysis (and, with an account, the decision).

    Everything in `request` is validated before any candle is read or any provider is called; bad input raises
    `InvalidInputError` naming the field and value, a missing or foreign watch or account `NotFoundError`. A signal
    that could not be obtained (budget refusal, every source failed) is not an error: it is recorded with its
    status and reasons. Commits the analysis before the risk decision, and each trading step after it (see
    `decide_and_execute`). `steps`, when given, times the candles, context, signal and trade steps and names the
    one an exception left.
    """
    steps = steps or StepLog()
    if request.execute and request.account_id is None:
        raise InvalidInputError("execute needs an account: orders go to one named account", field="execute")
    chain = signal_chain(request.signals)
    rule_params = _rule_params(chain, request.rule_params)
    markets.check_timeframe(request.timeframe)
    rules = markets.market_rules(session, settings, request.exchange_id, request.symbol)
    user = session.get(User, request.user_id)
    if user is None:
        raise InvalidInputError(f"no user #{request.user_id}", field="user")
    watch = owned(session, Watch, request.watch_id, user.id) if request.watch_id is not None else None
    account = _account(session, user.id, request.account_id or (watch.account_id if watch else None))

    with steps.step("candles"):
        candles = _candles(session, settings, request, now())
    last_open = candles.index[-1].to_pydatetime()
    bar_duration = timeframe_duration(request.timeframe)
    if request.account_id is not None:
        # Before any provider is paid: trading at a bar the account has already passed is refused up front.
        check_account_clock(account, last_open + bar_duration, request.execute)
    with steps.step("context"):
        context, warnings = _context(session, request, candles, chain, account, rules.min_notional)
    caps = BudgetCaps(
        per_request=request.max_cost_usd or (watch.max_cost_per_call_usd if watch else None),
        user_daily=user.daily_budget_usd,
        user_monthly=user.monthly_budget_usd,
        watch_daily=watch.daily_budget_usd if watch else None,
    )
    query = SignalQuery(context, candles, BudgetScope(user.id, watch.id if watch else None), caps, rule_params)
    # Nothing is written yet: ending the read transaction returns the connection to the pool instead of holding it
    # for the seconds a provider may take (a pool of scheduled runs would otherwise run out of connections).
    session.commit()
    with steps.step("signal"):
        outcome = propose_signal(chain, query, services)
    steps.note("signal_status", f"{outcome.status.value} {outcome.signal.action.value}")
    if outcome.cost_usd > 0:
        usage.notify_budget_crossings(session, user, outcome.cost_usd, now())
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
        bar = Candle(
            last_open, *(_exact(candles[name].iloc[-1]) for name in ("open", "high", "low", "close", "volume"))
        )
        with steps.step("trade"):
            trade = decide_and_execute(
                session,
                settings,
                account,
                analysis,
                outcome.signal,
                bar,
                bar_duration,
                _bar_source(session, settings, request, now()),
                request.execute,
                now,
            )
    return AnalysisResult(analysis, outcome, trade, warnings)


def _context(
    session: Session,
    request: AnalysisRequest,
    candles: pd.DataFrame,
    chain: list[SourceSpec],
    account: Account,
    min_notional: Decimal,
) -> tuple[MarketContext, list[str]]:
    """The context the signal source reads, and warnings about the candles it came from."""
    # Only a model reads the higher timeframe's lines; a rules strategy decides on the candles alone.
    asks_a_model = any(spec.kind != "rules" for spec in chain)
    higher = _higher_timeframe(session, request, candles.index[-1]) if asks_a_model else None
    warnings = _gap_warnings(candles, request.timeframe)
    if higher is not None:
        warnings += _gap_warnings(higher, markets.HIGHER_TIMEFRAME[request.timeframe])
    position = open_position(session, account.id, request.symbol)
    context = build_context(
        compute_indicators(candles),
        len(candles) - 1,
        PositionFacts(position.quantity, position.entry_price) if position else None,
        AccountFacts(
            equity=account.current_balance
            + (position.quantity * Decimal(str(candles["close"].iloc[-1])) if position else 0),
            free_quote=account.current_balance,
            quote_currency=account.quote_currency,
            min_order_notional=min_notional,
        ),
        ContextOptions(symbol=request.symbol, timeframe=request.timeframe, blind=request.blind),
        higher_timeframe=compute_indicators(higher) if higher is not None else None,
    )
    return context, warnings


UNTIL_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_until(text: str) -> datetime:
    """A bar open time typed by a person, read as UTC: "2024-01-12" or "2024-01-12 16:00" (also with T, seconds).

    Raises `InvalidInputError` (field `until`) naming the value and the accepted forms.
    """
    cleaned = text.strip().removesuffix("Z").removesuffix(" UTC")
    for pattern in UNTIL_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise InvalidInputError(
        f'until must be a UTC date or time like "2024-01-12" or "2024-01-12 16:00", got "{text}"',
        field="until",
        details={"value": text},
    )


def signal_chain(text: str) -> list[SourceSpec]:
    """The signal sources of `text` (e.g. "deepseek -> rules:sma_cross"), each with a known model.

    Raises `InvalidInputError` (field `signals`) naming the unknown source, strategy syntax or model.
    """
    try:
        chain = parse_chain(text)
        for spec in chain:
            if spec.kind != "rules" and spec.model is not None:
                model_info(spec.provider or spec.kind, spec.model)
    except ValueError as error:
        raise InvalidInputError(str(error), field="signals", details={"value": text}) from None
    return chain


def _rule_params(chain: list[SourceSpec], raw: Mapping[str, str]) -> dict[str, Any]:
    strategies = [spec.strategy for spec in chain if spec.kind == "rules" and spec.strategy]
    if raw and not strategies:
        raise InvalidInputError("params only apply to a rules:STRATEGY signal source", field="params")
    if not strategies:
        return {}
    try:
        return parse_params(strategies[0], dict(raw))
    except ValueError as error:
        field_name = "signals" if "strategy" in str(error) and "unknown" in str(error) else "params"
        raise InvalidInputError(str(error), field=field_name) from None


def _account(session: Session, user_id: int, account_id: int | None) -> Account:
    """The given account, or the user's first one: the context always describes a real account."""
    if account_id is not None:
        return owned(session, Account, account_id, user_id)
    account = session.scalar(select(Account).where(Account.user_id == user_id).order_by(Account.id).limit(1))
    if account is None:
        raise InvalidInputError("this user has no account yet: create a paper account first", field="account_id")
    return account


def _candles(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> pd.DataFrame:
    if request.market.startswith("ccxt:"):
        exchange_id = request.market.partition(":")[2] or request.exchange_id
        frame = markets.exchange_candles(
            session, settings, exchange_id, request.symbol, request.timeframe, HISTORY_BARS, now
        )
        if request.until is not None:
            frame = _up_to(frame, request.until, f"{exchange_id}'s recent {request.symbol} {request.timeframe} candles")
        if len(frame) < WARMUP_BARS + 1:
            raise InvalidInputError(
                f"{exchange_id} returned {len(frame)} closed {request.symbol} {request.timeframe} candles, "
                f"{WARMUP_BARS + 1} needed",
                field="symbol",
            )
        return frame
    if request.market == "replay":
        return _replay_candles(session, settings, request, now)
    if request.market != "store":
        raise InvalidInputError(
            f'market must be store, replay or ccxt:EXCHANGE, got "{request.market}"', field="market"
        )
    stored = markets.stored_series(session, request.exchange_id, request.symbol, request.timeframe)
    what = f"{request.symbol} {request.timeframe}"
    if stored is None:
        timeframes = [
            series.timeframe
            for series in markets.coverage(session)
            if (series.exchange_id, series.symbol) == (request.exchange_id, request.symbol)
        ]
        others = f" (stored for {request.symbol}: {', '.join(timeframes)})" if timeframes else ""
        raise InvalidInputError(
            f"no {what} candles stored for {request.exchange_id}{others}: import them first, "
            f"or analyse live data from market ccxt:{request.exchange_id}",
            field="timeframe" if timeframes else "symbol",
        )
    if request.until is not None:
        _check_until(request.until, stored)
    # Only bars that have closed by `now` count: a stored bar still forming (or not yet open) is never decided on.
    last_closed_open = now - timeframe_duration(request.timeframe)
    bound = last_closed_open if request.until is None else min(request.until, last_closed_open)
    frame = markets.stored_candles(session, request.exchange_id, request.symbol, request.timeframe, HISTORY_BARS, bound)
    if request.until is not None and len(frame):
        found = frame.index[-1].to_pydatetime()
        if request.until - found >= 2 * timeframe_duration(request.timeframe):
            raise InvalidInputError(
                f"until {_utc_text(request.until)} falls in a gap of the stored {what} candles: the latest bar "
                f"before it opened {_utc_text(found)} ({_span(stored)})",
                field="until",
            )
    if len(frame) < WARMUP_BARS + 1:
        at = f" up to {_utc_text(request.until)}" if request.until is not None else ""
        raise InvalidInputError(
            f"not enough {what} candles{at}: {len(frame)} stored, {WARMUP_BARS + 1} needed for the indicators "
            f"({_span(stored)})",
            field="until" if request.until is not None else "symbol",
        )
    return frame


def _up_to(frame: pd.DataFrame, until: datetime, what: str) -> pd.DataFrame:
    """`frame` cut at the bar opened at `until`, which must be in it (e.g. a scheduled run's bar)."""
    kept = frame[frame.index <= until]
    if not len(kept) or kept.index[-1].to_pydatetime() != until:
        raise InvalidInputError(f"until {_utc_text(until)} is not among {what}", field="until")
    return kept


def _replay_candles(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> pd.DataFrame:
    """The replay's candles closed by `now`, a replay time (the scheduler's market clock), up to the bar opened at
    `request.until` when one is asked for (a scheduled run analyses exactly its bar)."""
    market = replay_market(session, settings)
    at = now if request.until is None else request.until + timeframe_duration(request.timeframe)
    if at > now:
        raise InvalidInputError(
            f"until {_utc_text(request.until or now)}: that replay bar has not closed yet "
            f"(replay time {_utc_text(now)})",
            field="until",
        )
    try:
        candles = market.closed_candles(request.symbol, request.timeframe, HISTORY_BARS, at)
    except ValueError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": request.symbol}) from None
    if len(candles) < WARMUP_BARS + 1:
        raise InvalidInputError(
            f"the replay has {len(candles)} closed {request.symbol} {request.timeframe} candles at "
            f"{_utc_text(now)}, {WARMUP_BARS + 1} needed",
            field="timeframe",
        )
    return markets.candles_frame(candles)


def _bar_source(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> BarSource:
    """Where upkeep reads the bars since the account's clock: the same market the analysis read."""
    if request.market == "replay":
        return replay_bars(replay_market(session, settings), request.timeframe, now)
    if request.market.startswith("ccxt:"):
        exchange_id = request.market.partition(":")[2] or request.exchange_id
        return markets.exchange_bars(session, settings, exchange_id, request.timeframe, now)
    return markets.stored_bars(session, request.exchange_id, request.timeframe)


def _exact(value: float) -> Decimal:
    # The frame holds floats; str() gives the shortest repr, which is the stored decimal for 8-decimal prices.
    return Decimal(str(value))


def _check_until(until: datetime, stored: StoredSeries) -> None:
    if until >= stored.last_close:
        raise InvalidInputError(
            f"until {_utc_text(until)} is after the stored {stored.symbol} {stored.timeframe} candles "
            f"({_span(stored)})",
            field="until",
            details={"value": until.isoformat(), "first": stored.first.isoformat(), "last": stored.last.isoformat()},
        )
    if until < stored.first:
        raise InvalidInputError(
            f"until {_utc_text(until)} is before the stored {stored.symbol} {stored.timeframe} candles "
            f"({_span(stored)})",
            field="until",
            details={"value": until.isoformat(), "first": stored.first.isoformat(), "last": stored.last.isoformat()},
        )


def _span(stored: StoredSeries) -> str:
    return f"stored: {stored.first:%Y-%m-%d %H:%M} -> {stored.last:%Y-%m-%d %H:%M} UTC"


def _utc_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _gap_warnings(frame: pd.DataFrame, timeframe: str) -> list[str]:
    """One warning per gap between the bars of `frame` (a lookback indexed by UTC open times): its indicators run
    across the missing bars as if the bars on either side were neighbours."""
    # cast: every candle frame (store or exchange) is indexed by UTC open times; the stubs cannot know it.
    opens = list(cast(pd.DatetimeIndex, frame.index).to_pydatetime())
    return [
        f"the {len(frame):,}-bar {timeframe} lookback spans a gap: {gap.first_missing:%Y-%m-%d %H:%M} -> "
        f"{gap.last_missing:%Y-%m-%d %H:%M} UTC, {gap.missing_bars:,} missing "
        f"bar{'' if gap.missing_bars == 1 else 's'}; indicators are computed across it"
        for gap in find_gaps(opens, timeframe)
    ]


def _higher_timeframe(session: Session, request: AnalysisRequest, last_open: pd.Timestamp) -> pd.DataFrame | None:
    """Higher-timeframe candles from the store, if it has enough of them (the context builder keeps it causal)."""
    higher = markets.HIGHER_TIMEFRAME.get(request.timeframe)
    if higher is None:
        return None
    frame = markets.stored_candles(
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


def recent_analyses(session: Session, user_id: int, limit: int = 10) -> list[Analysis]:
    """The user's latest analyses, newest first."""
    query = select(Analysis).where(Analysis.user_id == user_id).order_by(Analysis.id.desc()).limit(limit)
    return list(session.scalars(query))
