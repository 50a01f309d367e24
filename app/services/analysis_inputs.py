"""What an analysis is asked (`AnalysisRequest`) and what it reads: its inputs checked, and the closed candles of
its bar from the candle store, the replay market or an exchange's public data, with warnings about gaps in them."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pandas as pd
from sqlalchemy.orm import Session

from ai.context import WARMUP_BARS
from ai.models import model_info
from ai.rules import parse_params
from ai.sources import SourceSpec, parse_chain
from app.config import Settings
from app.errors import InvalidInputError
from app.persistence.candles import StoredSeries
from app.services import markets
from app.services.replay import replay_bars, replay_market
from app.services.upkeep import BarSource
from exchanges.candles import find_gaps
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


def rule_params_for(chain: list[SourceSpec], raw: Mapping[str, str]) -> dict[str, Any]:
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


def candles_for(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> pd.DataFrame:
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
        return replay_candles(session, settings, request, now)
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
                f"until {utc_text(request.until)} falls in a gap of the stored {what} candles: the latest bar "
                f"before it opened {utc_text(found)} ({_span(stored)})",
                field="until",
            )
    if len(frame) < WARMUP_BARS + 1:
        at = f" up to {utc_text(request.until)}" if request.until is not None else ""
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
        raise InvalidInputError(f"until {utc_text(until)} is not among {what}", field="until")
    return kept


def replay_candles(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> pd.DataFrame:
    """The replay's candles closed by `now`, a replay time (the scheduler's market clock), up to the bar opened at
    `request.until` when one is asked for (a scheduled run analyses exactly its bar)."""
    market = replay_market(session, settings)
    at = now if request.until is None else request.until + timeframe_duration(request.timeframe)
    if at > now:
        raise InvalidInputError(
            f"until {utc_text(request.until or now)}: that replay bar has not closed yet (replay time {utc_text(now)})",
            field="until",
        )
    try:
        candles = market.closed_candles(request.symbol, request.timeframe, HISTORY_BARS, at)
    except ValueError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": request.symbol}) from None
    if len(candles) < WARMUP_BARS + 1:
        raise InvalidInputError(
            f"the replay has {len(candles)} closed {request.symbol} {request.timeframe} candles at "
            f"{utc_text(now)}, {WARMUP_BARS + 1} needed",
            field="timeframe",
        )
    return markets.candles_frame(candles)


def bar_source(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> BarSource:
    """Where upkeep reads the bars since the account's clock: the same market the analysis read."""
    if request.market == "replay":
        return replay_bars(replay_market(session, settings), request.timeframe, now)
    if request.market.startswith("ccxt:"):
        exchange_id = request.market.partition(":")[2] or request.exchange_id
        return markets.exchange_bars(session, settings, exchange_id, request.timeframe, now)
    return markets.stored_bars(session, request.exchange_id, request.timeframe)


def exact_decimal(value: float) -> Decimal:
    # The frame holds floats; str() gives the shortest repr, which is the stored decimal for 8-decimal prices.
    return Decimal(str(value))


def _check_until(until: datetime, stored: StoredSeries) -> None:
    if until >= stored.last_close:
        raise InvalidInputError(
            f"until {utc_text(until)} is after the stored {stored.symbol} {stored.timeframe} candles ({_span(stored)})",
            field="until",
            details={"value": until.isoformat(), "first": stored.first.isoformat(), "last": stored.last.isoformat()},
        )
    if until < stored.first:
        raise InvalidInputError(
            f"until {utc_text(until)} is before the stored {stored.symbol} {stored.timeframe} candles "
            f"({_span(stored)})",
            field="until",
            details={"value": until.isoformat(), "first": stored.first.isoformat(), "last": stored.last.isoformat()},
        )


def _span(stored: StoredSeries) -> str:
    return f"stored: {stored.first:%Y-%m-%d %H:%M} -> {stored.last:%Y-%m-%d %H:%M} UTC"


def utc_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def gap_warnings(frame: pd.DataFrame, timeframe: str) -> list[str]:
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


def higher_timeframe(session: Session, request: AnalysisRequest, last_open: pd.Timestamp) -> pd.DataFrame | None:
    """Higher-timeframe candles from the store, if it has enough of them (the context builder keeps it causal)."""
    higher = markets.HIGHER_TIMEFRAME.get(request.timeframe)
    if higher is None:
        return None
    frame = markets.stored_candles(
        session, request.exchange_id, request.symbol, higher, HIGHER_TIMEFRAME_BARS, last_open.to_pydatetime()
    )
    return frame if len(frame) > WARMUP_BARS else None
