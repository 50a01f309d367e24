"""Turning a backtest request into a run that can start: every input validated and every datum loaded before
anything is recorded (the private half of `app.services.backtests`)."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy.orm import Session

from ai.indicators import WARMUP_BARS
from ai.rules import parse_params
from ai.sources import SourceSpec
from app.config import Settings
from app.errors import InvalidInputError
from app.services import markets
from app.services.analyses import signal_chain
from backtest.engine import BacktestSettings
from backtest.results import AiUsage
from backtest.runner import settings_dict
from backtest.sources import BarSignalSource, RulesSource
from exchanges.candles import CandleFileError, find_gaps, read_candle_csv
from exchanges.markets import MarketRules
from exchanges.timeframes import timeframe_duration
from risk import RiskConfig
from risk.config import RiskSettingError


@dataclass(frozen=True)
class BacktestRequest:
    """A backtest as a user asks for it; text values are parsed and validated by `prepare`."""

    user_id: int
    symbol: str
    timeframe: str
    signals: str
    params: dict[str, str] = field(default_factory=dict)
    exchange_id: str = "binance"
    data_file: str | None = None
    start: str | None = None  # ISO dates, UTC
    end: str | None = None
    every: int = 1
    fee_rate: str = "0.001"
    slippage_bps: str = "0"
    balance: str = "100"
    risk: dict[str, Any] = field(default_factory=dict)
    cache_only: bool = False
    max_cost: str | None = None
    blind: bool | None = None  # default: on for AI sources
    allow_gaps: bool = False  # run across a gap in the data longer than max_gap_bars instead of refusing
    max_gap_bars: int = 24
    api_key_id: int | None = None  # asked through this API key: its allowed models and caps apply


@dataclass
class RunInputs:
    """A validated request with its data: the candles from the warm-up on, the market, the engine settings."""

    request: BacktestRequest
    candles: pd.DataFrame
    market: MarketRules
    engine_settings: BacktestSettings
    first_decision: int
    decisions: int
    described: dict[str, Any]  # the run's settings as the report shows them
    warnings: list[str]
    preview: dict[str, Any]  # shown before a run starts: window, decisions, cost estimate


def _no_ai() -> AiUsage:
    return AiUsage(0, 0, 0, Decimal(0), None)


def _no_failures() -> dict[str, int]:
    return {}


@dataclass
class Prepared:
    """A validated backtest, ready to run: data loaded, the signal source wired, the cost known."""

    inputs: RunInputs
    source: BarSignalSource
    ai_usage: Callable[[], AiUsage] = _no_ai
    ai: SourceSpec | None = None  # the AI source, None for rules
    paid: bool = False
    failures: Callable[[], dict[str, int]] = _no_failures  # AI decisions without an answer so far, by reason code
    after_success: Callable[[Session], None] | None = None


def prepare(session: Session, settings: Settings, request: BacktestRequest) -> Prepared:
    """Validate `request` and load what its run needs. Writes nothing.

    Raises `InvalidInputError` naming the field and value (symbol, timeframe, signals, params, start, end, every,
    balance, fee_rate, slippage_bps, risk, data_file, cache_only, max_gap_bars, allow_gaps), and
    `BudgetRefusedError` for a paid run whose estimated cost is not covered by `max_cost`.
    """
    spec = _source(request)
    market = markets.market_rules(session, settings, request.exchange_id, request.symbol)
    markets.check_timeframe(request.timeframe)
    if request.every < 1:
        raise InvalidInputError(
            f'every must be a whole number of bars, at least 1, got "{request.every}"', field="every"
        )
    if request.max_gap_bars < 0:
        raise InvalidInputError(
            f'max_gap_bars must be a whole number of bars, at least 0, got "{request.max_gap_bars}"',
            field="max_gap_bars",
        )
    if request.max_cost not in (None, ""):  # checked even when the source is free: a wrong value is never ignored
        parse_number(request.max_cost, "max_cost", "a positive amount in USD", lambda v: v > 0)
    engine_settings = BacktestSettings(
        symbol=request.symbol,
        timeframe=request.timeframe,
        starting_balance=parse_number(request.balance, "balance", "a positive amount", lambda v: v > 0),
        fee_rate=parse_number(request.fee_rate, "fee_rate", "a fraction in [0, 0.1), e.g. 0.001 for 0.1%", _fraction),
        slippage_bps=parse_number(request.slippage_bps, "slippage_bps", "basis points in [0, 1000]", _bps),
        every=request.every,
        risk=_risk(request.risk),
    )
    rule_params = _rule_params(spec, request.params)
    candles, first, warnings = _window(session, request)
    decisions = len(range(first, len(candles) - 1, request.every))
    described: dict[str, Any] = {
        **settings_dict(engine_settings),
        "signal_source": request.signals,
        "params": dict(request.params),
        "data": request.data_file or f"candle store ({request.exchange_id})",
    }
    preview: dict[str, Any] = {
        "window": (candles.index[first].isoformat(), candles.index[-1].isoformat()),
        "decisions": decisions,
    }
    inputs = RunInputs(request, candles, market, engine_settings, first, decisions, described, warnings, preview)
    if spec.kind == "rules":
        return Prepared(inputs, RulesSource(spec.strategy or "", rule_params, candles))
    # The AI wiring imports the signal layer's storage: only AI runs need it.
    from app.services.backtest_ai import prepare_ai

    return prepare_ai(session, settings, inputs, spec)


@dataclass(frozen=True)
class BacktestPreview:
    """What a run would do, shown before it is queued. Times are ISO-8601 UTC; money is USD."""

    first_decision: str
    last_bar: str
    decisions: int
    ai: bool  # an AI source (not a rules strategy)
    paid: bool  # it would call a paid provider: not cache only, no identical earlier run to replay for $0
    estimated_cost_usd: Decimal | None  # what the provider calls would cost at most; None for rules
    cached_entries: int  # cached answers of the source's model already stored (an identical run's answers if replayed)
    replays_earlier_run: bool


def preview_backtest(session: Session, settings: Settings, request: BacktestRequest) -> BacktestPreview:
    """What a run of `request` would do and cost, recording and calling nothing.

    Raises what `prepare` raises, bar the paid run's allowance (`max_cost`) and provider-key checks: the run itself
    makes those, against this estimate. The estimate is the AI layer's own (`ai.pricing.estimate_run_cost`), so it
    comes from preparing the run as cache-only, which computes it without needing the allowance.
    """
    spec = _source(request)
    ai = spec.kind != "rules"
    probe = replace(request, cache_only=True, max_cost=None) if ai else request
    preview = prepare(session, settings, probe).inputs.preview
    first, last = preview["window"]
    journal = bool(preview.get("journal"))
    estimate = preview.get("estimated_cost_usd")
    return BacktestPreview(
        first_decision=first,
        last_bar=last,
        decisions=int(preview["decisions"]),
        ai=ai,
        paid=ai and spec.is_paid and not request.cache_only and not journal,
        estimated_cost_usd=None if estimate is None else Decimal(estimate),
        cached_entries=int(preview.get("cached_entries", 0)),
        replays_earlier_run=journal,
    )


def _source(request: BacktestRequest) -> SourceSpec:
    chain = signal_chain(request.signals)
    if len(chain) != 1:
        raise InvalidInputError(
            f'a backtest takes one signal source, not a fallback chain, got "{request.signals}"', field="signals"
        )
    spec = chain[0]
    if spec.kind == "rules" and request.cache_only:
        raise InvalidInputError("cache_only applies to AI signal sources, not to rules", field="cache_only")
    if spec.kind != "rules" and request.params:
        raise InvalidInputError("params only apply to a rules:STRATEGY signal source", field="params")
    return spec


def _rule_params(spec: SourceSpec, raw: dict[str, str]) -> dict[str, Any]:
    if spec.kind != "rules":
        return {}
    try:
        return parse_params(spec.strategy or "", raw)
    except ValueError as error:
        field_name = "signals" if "strategy" in str(error) else "params"
        raise InvalidInputError(str(error), field=field_name) from None


def _risk(overrides: dict[str, Any]) -> RiskConfig:
    try:
        return RiskConfig.from_overrides(overrides)
    except RiskSettingError as error:
        raise InvalidInputError(str(error), field="risk", details={"setting": error.setting}) from None


def _fraction(value: Decimal) -> bool:
    # The engine's own bound: a fee of 10% or more per fill is a typo, not a market.
    return 0 <= value < Decimal("0.1")


def _bps(value: Decimal) -> bool:
    return 0 <= value <= 1000


def parse_number(text: str, name: str, expectation: str, valid: Callable[[Decimal], bool]) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvalidInputError(f'{name} must be a number, got "{text}"', field=name, details={"value": text}) from None
    if not value.is_finite() or not valid(value):
        raise InvalidInputError(f'{name} must be {expectation}, got "{text}"', field=name, details={"value": text})
    return value


def _day(text: str | None, name: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        return pd.Timestamp(text, tz="UTC")
    except ValueError:
        raise InvalidInputError(
            f'{name} must be a calendar date, YYYY-MM-DD, got "{text}"', field=name, details={"value": text}
        ) from None


def _window(session: Session, request: BacktestRequest) -> tuple[pd.DataFrame, int, list[str]]:
    """The candles from the warm-up before the first decision to the end, the first decision's index, and notices.

    A requested start before the data is moved to the first bar with a full warm-up, with a notice; a window that
    holds no data, or an end before the start, is refused naming the requested window and the stored range.
    """
    candles = _candles(session, request)
    start, end = _day(request.start, "start"), _day(request.end, "end")
    what = f"{request.symbol} {request.timeframe}"
    stored = f"{candles.index[0]:%Y-%m-%d %H:%M} -> {candles.index[-1]:%Y-%m-%d %H:%M} UTC"
    warnings: list[str] = []
    if start is not None and end is not None and end < start:
        raise InvalidInputError(f"end {request.end} is before start {request.start}", field="end")
    if start is not None and start > candles.index[-1]:
        raise InvalidInputError(f"start {request.start} is after the stored {what} candles ({stored})", field="start")
    if end is not None and end + pd.Timedelta(days=1) <= candles.index[0]:
        raise InvalidInputError(f"end {request.end} is before the stored {what} candles ({stored})", field="end")
    full = candles
    if end is not None:
        candles = candles[candles.index < end + pd.Timedelta(days=1)]
    first = WARMUP_BARS
    if start is not None:
        first = max(first, int(candles.index.searchsorted(start)))
    if len(candles) - first < 2:
        source = request.data_file or "the candle store"
        if start is None and end is None:
            raise InvalidInputError(
                f"not enough {what} candles in {source}: {len(candles):,} bar(s) ({stored}), at least "
                f"{WARMUP_BARS + 2} needed ({WARMUP_BARS} warm the indicators up, then 2 to trade on)",
                field="data_file" if request.data_file else "symbol",
            )
        window = f"{request.start or 'the first bar'} -> {request.end or 'the last bar'}"
        raise InvalidInputError(
            f"not enough {what} candles for the window {window}: {max(len(candles) - first, 0)} bar(s) after the "
            f"{WARMUP_BARS}-bar indicator warm-up, at least 2 needed{_gap_around(full, start)} (stored: {stored})",
            field="start" if start is not None else "end",
        )
    if start is not None and candles.index[first] - start >= pd.Timedelta(days=1):
        reason = "before the stored candles" if start < candles.index[0] else "in a gap of the stored candles"
        warnings.append(
            f"start {request.start} is {reason} ({stored}): the first decision is at "
            f"{candles.index[first]:%Y-%m-%d %H:%M} UTC, after the {WARMUP_BARS}-bar indicator warm-up"
        )
    # Only the warm-up before the first decision is needed; older history would only be iterated over.
    candles = candles.iloc[first - WARMUP_BARS :]
    first = WARMUP_BARS
    # cast: stored candles carry a UTC DatetimeIndex of open times (the stubs type `DataFrame.index` as any Index).
    warmup_times = cast(pd.DatetimeIndex, candles.index[: first + 1])
    warmup_gaps = find_gaps(list(warmup_times.to_pydatetime()), request.timeframe)
    if warmup_gaps:
        missing = sum(gap.missing_bars for gap in warmup_gaps)
        warnings.append(
            f"the {WARMUP_BARS}-bar indicator warm-up before {candles.index[first]:%Y-%m-%d %H:%M} UTC spans "
            f"{missing:,} missing bar(s): the first decisions see indicators computed across that gap"
        )
    _check_gaps(request, candles, first)
    return candles, first, warnings


def _check_gaps(request: BacktestRequest, candles: pd.DataFrame, first: int) -> None:
    """Refuse a decision window that spans a gap longer than `max_gap_bars`, unless `allow_gaps`.

    Across such a hole the bar after it takes the whole move as one return (the metrics count the hole as calendar
    time), and the strategy sat on a position it could not have managed. The message names no field or option, so
    every front end can show it; each adds its own hint for `allow_gaps`.
    """
    if request.allow_gaps:
        return
    times = cast(pd.DatetimeIndex, candles.index[first:])
    long_gaps = [
        gap
        for gap in find_gaps(list(times.to_pydatetime()), request.timeframe)
        if gap.missing_bars > request.max_gap_bars
    ]
    if not long_gaps:
        return
    longest = max(long_gaps, key=lambda gap: gap.missing_bars)
    days = longest.missing_bars * timeframe_duration(request.timeframe) / pd.Timedelta(days=1)
    others = f" and {len(long_gaps) - 1:,} more" if len(long_gaps) > 1 else ""
    raise InvalidInputError(
        f"the window {times[0]:%Y-%m-%d %H:%M} -> {times[-1]:%Y-%m-%d %H:%M} UTC spans a gap in the "
        f"{request.symbol} {request.timeframe} candles longer than the {request.max_gap_bars:,} missing bar(s) "
        "allowed: "
        f"{longest.first_missing:%Y-%m-%d %H:%M} -> {longest.last_missing:%Y-%m-%d %H:%M} UTC, "
        f"{longest.missing_bars:,} missing bar(s) ({days:,.1f} days){others}; choose a "
        "window without it, allow longer gaps, or allow gaps to run across it",
        field="allow_gaps",
        details={
            "first_missing": longest.first_missing.isoformat(),
            "last_missing": longest.last_missing.isoformat(),
            "missing_bars": longest.missing_bars,
        },
    )


def _gap_around(candles: pd.DataFrame, start: pd.Timestamp | None) -> str:
    """ ", the stored candles jump from A to B" when `start` falls in a hole of the data."""
    if start is None:
        return ""
    after = int(candles.index.searchsorted(start))
    if after == 0 or after >= len(candles):
        return ""
    before, following = candles.index[after - 1], candles.index[after]
    if following - before <= pd.Timedelta(days=1):
        return ""
    return f"; the stored candles jump from {before:%Y-%m-%d %H:%M} to {following:%Y-%m-%d %H:%M} UTC"


def _candles(session: Session, request: BacktestRequest) -> pd.DataFrame:
    if request.data_file:
        try:
            return markets.candles_frame(read_candle_csv(Path(request.data_file), request.timeframe))
        except CandleFileError as error:
            raise InvalidInputError(str(error), field="data_file") from None
    frame = markets.stored_range(session, request.exchange_id, request.symbol, request.timeframe)
    if frame.empty:
        raise InvalidInputError(
            f"no {request.symbol} {request.timeframe} candles stored for {request.exchange_id}: seed the demo or "
            "import candles first, or give a candle file",
            field="symbol",
        )
    return frame
