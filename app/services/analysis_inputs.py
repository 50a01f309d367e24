"""What an analysis is asked (`AnalysisRequest`) and what it reads: its inputs checked, and the closed candles of
its bar from the candle store, the replay market or an exchange's public data, with warnings about gaps in them.

At a candle close every watch of a symbol and timeframe analyses the same bar, and market data is public: the
analyses of one process share what is identical for them (`SharedInputs`): the replay's candle frames, and the
indicators computed from any candles (`indicators`, keyed by the candles' content). Candles read from the store or an
exchange are read by each analysis: their rows can change behind the process (an exchange's late bar, rows deleted
or replaced in the database), so nothing short of their content names them safely."""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from ai.indicators import WARMUP_BARS, compute_indicators
from ai.models import model_info
from ai.rules import parse_params
from ai.sources import SourceSpec, parse_chain
from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, AccountKind
from app.persistence.candles import StoredSeries
from app.services import markets
from app.services.exchanges import account_bars, account_candles
from app.services.replay import replay_bars, replay_market
from app.services.upkeep import BarSource
from exchanges.candles import find_gaps
from exchanges.timeframes import timeframe_duration

# The code of a refusal for too few closed candles before a bar (the indicators' warm-up): the input is valid, the
# market's history is short (a young replay, a newly listed symbol).
INSUFFICIENT_HISTORY = "INSUFFICIENT_HISTORY"
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
    # A scheduled run: when the account has already traded a later bar (another watch of the account, or a run
    # that waited on a slow provider), its signal is advice only instead of an ACCOUNT_CLOCK refusal.
    advise_if_behind: bool = False
    # The API key the request came through: its own caps apply with the user's, and it may name only its models.
    api_key_id: int | None = None


class SharedInputs:
    """A small, thread-safe, bounded cache of frames analyses read, by keys that name everything their content
    depends on: the replay's closed candles by the replay and the bars' bound, indicators by the content of the
    candles they are computed from (and the function computing them). No entry can go stale, and none holds a
    still-forming bar (the replay never returns one). Each caller gets its own copy, so no analysis sees another's
    changes. Of several threads asking for the same key at once, one loads and the others wait for its frame (a
    tick's runs of one symbol start together); when that load fails, each loads on its own and the error is not
    cached. At most `max_entries` frames are kept, the least recently used dropped first. `enabled = False` loads
    every time.
    """

    WAIT_SECONDS = 60.0  # a waiter gives up on a stuck load after this long and loads on its own

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self.enabled = True
        self.hits = self.misses = 0
        self._entries: OrderedDict[Hashable, pd.DataFrame] = OrderedDict()
        self._loading: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The frame of `key`: a copy of the shared one, else what `load()` returns (then shared)."""
        if not self.enabled:
            return load()
        with self._lock:
            frame = self._hit(key)
            if frame is not None:
                return frame
            loading = self._loading.get(key)
            if loading is None:
                self._loading[key] = done = threading.Event()
        if loading is not None:
            loading.wait(self.WAIT_SECONDS)
            with self._lock:
                frame = self._hit(key)
            return frame if frame is not None else load()
        try:
            frame = load()
            with self._lock:
                self.misses += 1
                self._entries[key] = frame.copy()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        finally:
            with self._lock:
                del self._loading[key]
            done.set()
        return frame

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _hit(self, key: Hashable) -> pd.DataFrame | None:
        frame = self._entries.get(key)
        if frame is None:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return frame.copy()


# The process's shared inputs: at most 64 frames of a few hundred rows (a few MB), e.g. the candles and indicators
# of both timeframes of a dozen symbols.
shared_inputs = SharedInputs()


def indicators(candles: pd.DataFrame) -> pd.DataFrame:
    """`compute_indicators(candles)`, computed once for candles with the same bars and values (shared inputs)."""
    fingerprint = _fingerprint(candles)
    if fingerprint is None:
        return compute_indicators(candles)
    key = ("indicators", compute_indicators.__module__, compute_indicators.__qualname__, fingerprint)
    return shared_inputs.get(key, lambda: compute_indicators(candles))


def _fingerprint(frame: pd.DataFrame) -> str | None:
    """A digest of everything in `frame` (columns, dtypes, time index, values); None unless it is a float frame indexed
    by open times (a candle frame), whose values are plain bytes."""
    if not isinstance(frame.index, pd.DatetimeIndex) or not all(pd.api.types.is_float_dtype(t) for t in frame.dtypes):
        return None
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((list(frame.columns), [str(t) for t in frame.dtypes], str(frame.index.tz))).encode())
    digest.update(np.ascontiguousarray(frame.index.asi8).tobytes())
    digest.update(np.ascontiguousarray(frame.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


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
    """The signal sources of `text` (e.g. "deepseek -> rules:sma_cross"), each with a known model or strategy.

    Raises `InvalidInputError` (field `signals`) naming the unknown source, strategy syntax or model.
    """
    try:
        chain = parse_chain(text)
        for spec in chain:
            if spec.kind == "rules":
                parse_params(spec.strategy or "", {})  # every strategy of a chain must exist, not only the first
            elif spec.model is not None:
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
        account = _live_account_on(session, request, exchange_id)
        frame = (
            markets.candles_frame(
                account_candles(session, settings, account, request.symbol, request.timeframe, HISTORY_BARS, now)
            )
            if account is not None
            else markets.exchange_candles(
                session, settings, exchange_id, request.symbol, request.timeframe, HISTORY_BARS, now
            )
        )
        if request.until is not None:
            frame = _up_to(frame, request.until, f"{exchange_id}'s recent {request.symbol} {request.timeframe} candles")
        if len(frame) < WARMUP_BARS + 1:
            raise InvalidInputError(
                f"{exchange_id} returned {len(frame)} closed {request.symbol} {request.timeframe} candles, "
                f"{WARMUP_BARS + 1} needed",
                field="symbol",
                code=INSUFFICIENT_HISTORY,
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
            code=INSUFFICIENT_HISTORY,
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
        # The replay's candles never change: its closed bars at `at` are always the same frame.
        frame = shared_inputs.get(
            ("replay", market, request.symbol, request.timeframe, HISTORY_BARS, at),
            lambda: markets.candles_frame(market.closed_candles(request.symbol, request.timeframe, HISTORY_BARS, at)),
        )
    except ValueError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": request.symbol}) from None
    if len(frame) < WARMUP_BARS + 1:
        raise InvalidInputError(
            f"the replay has {len(frame)} closed {request.symbol} {request.timeframe} candles at "
            f"{utc_text(now)}, {WARMUP_BARS + 1} needed",
            field="timeframe",
            code=INSUFFICIENT_HISTORY,
        )
    return frame


def bar_source(session: Session, settings: Settings, request: AnalysisRequest, now: datetime) -> BarSource:
    """Where upkeep reads the bars since the account's clock: the same market the analysis read."""
    if request.market == "replay":
        return replay_bars(replay_market(session, settings), request.timeframe, now)
    if request.market.startswith("ccxt:"):
        exchange_id = request.market.partition(":")[2] or request.exchange_id
        account = _live_account_on(session, request, exchange_id)
        if account is not None:
            return account_bars(session, settings, account, request.timeframe, now)
        return markets.exchange_bars(session, settings, exchange_id, request.timeframe, now)
    return markets.stored_bars(session, request.exchange_id, request.timeframe)


def _live_account_on(session: Session, request: AnalysisRequest, exchange_id: str) -> Account | None:
    """The request's account when it is live on `exchange_id`: its candles come through its own connection (its
    sandbox and base URL), the market its orders go to."""
    account = session.get(Account, request.account_id) if request.account_id is not None else None
    if account is None or account.kind is not AccountKind.LIVE or account.exchange_id != exchange_id:
        return None
    return account


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
