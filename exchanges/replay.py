"""The replay market: the bundled real Binance candles played back on an accelerated clock, with no network.

A fresh install has no market data and maybe no network; the replay market lets watches produce signals anyway.
`ReplayClock` maps wall time to replay time (`replay_now = replay_start + (wall_now - wall_start) x speed`; by
default one 1h candle closes every 10 wall seconds), and `ReplayMarket` answers "which candles have closed by now"
from the candles in memory, never showing a still-forming bar. Both clocks are callables passed in: nothing here
sleeps or reads global time, so tests drive a fake wall clock.

Only the 2024 files (2024-01-01 -> 2024-09-06) are replayed by default. The bundled 2017-2021 files end on
2021-06-10, 935 days before the 2024 files begin: a replay across that hole would jump by two and a half years
from one bar to the next, and every indicator spanning it would mix two unrelated markets.

Everything shown from here is labelled "replay": `ReplayMarket.source`, `ReplayTicker.source` and
`ReplayMarket.describe()` ("replay of binance BTC/USDT 1h 2024-01-13 -> 2024-09-06 at 360x (loop 1)").
"""

import bisect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from exchanges.base import Ticker
from exchanges.candles import Candle, find_gaps, read_candle_csv
from exchanges.timeframes import timeframe_duration

SOURCE = "replay"
DEFAULT_SPEED = 360  # replay seconds per wall second: one 1h candle every 10 s
DEFAULT_WARMUP_BARS = 300  # 1h bars before the replay starts, so indicators have history from the first moment
REPLAY_EXCHANGE = "binance"
# (file in data/candles, symbol, timeframe): the 2024 files only (see the module docstring for why).
REPLAY_CANDLE_FILES = (
    ("binance_BTCUSDT_1h_2024-01_2024-09.csv", "BTC/USDT", "1h"),
    ("binance_BTCUSDT_1d_2024-01_2024-09.csv", "BTC/USDT", "1d"),
    ("binance_ETHUSDT_1h_2024-01_2024-09.csv", "ETH/USDT", "1h"),
    ("binance_ETHUSDT_1d_2024-01_2024-09.csv", "ETH/USDT", "1d"),
)

WallClock = Callable[[], datetime]
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WEEK_ORIGIN = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday


@dataclass(frozen=True, slots=True)
class ReplayPosition:
    """Where the replay is at one wall instant: the replay time and which pass over the data (1 = the first)."""

    now: datetime
    loop: int


@dataclass(frozen=True, slots=True)
class NextClose:
    """The next moment a new bar of a timeframe becomes the latest closed one, in replay and in wall time.

    `replay_time` is that bar's close time and `loop` the pass it happens in. When the data runs out first, the
    next change is the wrap-around: `wall_time` is the wrap, `loop` the next pass and `replay_time` the close of
    the bar that is the latest closed one at the replay start.
    """

    timeframe: str
    replay_time: datetime
    wall_time: datetime
    loop: int


class ReplayClock:
    """Replay time from wall time: `replay_start + (wall_now - wall_start) x speed`, wrapping around at `end`.

    `start` is the replay time at `wall_start` (default: the wall clock's reading when the clock is made) and
    `end` the replay time at which the data runs out. When replay time reaches `end` it wraps around to `start`
    and the loop counter goes up by one (loop 1 is the first pass), so whatever shows a replay time can also say
    "replay, loop 2". A wall time before `wall_start` reads as `start`, loop 1.

    `now` is a `Callable[[], datetime]` like any clock, so it can be handed to the paper exchange or a service.
    """

    def __init__(
        self,
        wall: WallClock,
        start: datetime,
        end: datetime,
        speed: float = DEFAULT_SPEED,
        wall_start: datetime | None = None,
    ) -> None:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("replay start and end must be timezone-aware (UTC)")
        if end <= start:
            raise ValueError(f"replay end {end:%Y-%m-%d %H:%M} must be after its start {start:%Y-%m-%d %H:%M}")
        if isinstance(speed, bool) or not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"replay speed must be a positive number, got {speed!r}")
        self.wall = wall
        self.start = start
        self.end = end
        self.speed = speed
        self.wall_start = wall() if wall_start is None else wall_start

    @property
    def span(self) -> timedelta:
        """The replay time one loop covers."""
        return self.end - self.start

    @property
    def wall_span(self) -> timedelta:
        """The wall time one loop takes."""
        return self.span / self.speed

    def position(self) -> ReplayPosition:
        """Replay time and loop from one reading of the wall clock (read both from here when both are shown)."""
        elapsed = max(self.wall() - self.wall_start, timedelta(0)) * self.speed
        passes, offset = divmod(elapsed, self.span)
        return ReplayPosition(self.start + offset, passes + 1)

    def now(self) -> datetime:
        """The replay time now."""
        return self.position().now

    def loop(self) -> int:
        """The pass over the data now: 1 on the first, 2 after the first wrap-around, ..."""
        return self.position().loop

    def wall_time_of(self, replay_time: datetime, loop: int | None = None) -> datetime:
        """The wall time at which the replay reaches `replay_time` in `loop` (default: the current loop).

        `replay_time` must lie in [start, end]; the answer may be in the past. It is rounded up to the microsecond,
        so at the answer the replay has reached `replay_time` (a bar closing then reads as closed).
        """
        if not self.start <= replay_time <= self.end:
            raise ValueError(
                f"replay time {replay_time:%Y-%m-%d %H:%M} is outside the replay "
                f"{self.start:%Y-%m-%d %H:%M} -> {self.end:%Y-%m-%d %H:%M}"
            )
        passes = (self.loop() if loop is None else loop) - 1
        if passes < 0:
            raise ValueError(f"loop must be 1 or more, got {loop}")
        replay_offset = passes * self.span + (replay_time - self.start)
        micros = math.ceil(Fraction(replay_offset // _MICROSECOND) / Fraction(self.speed))
        return self.wall_start + micros * _MICROSECOND


@dataclass(frozen=True)
class ReplayTicker(Ticker):
    """A `Ticker` from the replay market: `at` is replay time, and it says so."""

    source: str = SOURCE
    loop: int = 1


class ReplayMarket:
    """Closed candles and prices of some (symbol, timeframe) series, as of the replay clock's time.

    Every series must have a bar closed by `clock.start` and reach to `clock.end`: within [start, end) each
    series' latest closed bar is the one that really was latest at that time, so nothing is missing or invented.
    """

    source = SOURCE

    def __init__(
        self,
        candles_by_series: Mapping[tuple[str, str], Sequence[Candle]],
        clock: ReplayClock,
        exchange_id: str = REPLAY_EXCHANGE,
    ) -> None:
        if not candles_by_series:
            raise ValueError("a replay market needs at least one candle series")
        self.clock = clock
        self.exchange_id = exchange_id
        self._candles: dict[tuple[str, str], list[Candle]] = {}
        self._open_times: dict[tuple[str, str], list[datetime]] = {}
        for (symbol, timeframe), candles in candles_by_series.items():
            step = timeframe_duration(timeframe)
            series = list(candles)
            name = f"{symbol} {timeframe}"
            if not series:
                raise ValueError(f"replay series {name} has no candles")
            open_times = [candle.open_time for candle in series]
            if any(later <= earlier for earlier, later in itertools.pairwise(open_times)):
                raise ValueError(f"replay series {name} is not in ascending open-time order")
            gaps = find_gaps(open_times, timeframe)
            if gaps:
                first = gaps[0]
                raise ValueError(
                    f"replay series {name} has {len(gaps)} gap(s), the first from {first.first_missing:%Y-%m-%d %H:%M}"
                    f" ({first.missing_bars} bars): a replay would jump"
                )
            if open_times[0] + step > clock.start:
                raise ValueError(
                    f"replay series {name} has no bar closed by the replay start {clock.start:%Y-%m-%d %H:%M}"
                )
            if open_times[-1] + 2 * step < clock.end:
                raise ValueError(
                    f"replay series {name} ends at {open_times[-1] + step:%Y-%m-%d %H:%M}, before the replay end "
                    f"{clock.end:%Y-%m-%d %H:%M}"
                )
            self._candles[symbol, timeframe] = series
            self._open_times[symbol, timeframe] = open_times

    # What is available

    @property
    def series(self) -> list[tuple[str, str]]:
        """The (symbol, timeframe) pairs replayed, sorted."""
        return sorted(self._candles)

    @property
    def symbols(self) -> list[str]:
        return sorted({symbol for symbol, _ in self._candles})

    def timeframes(self, symbol: str) -> list[str]:
        """The symbol's timeframes, finest first."""
        self._check_symbol(symbol)
        found = [timeframe for known, timeframe in self._candles if known == symbol]
        return sorted(found, key=timeframe_duration)

    # Candles and prices

    def closed_candles(self, symbol: str, timeframe: str, limit: int, now: datetime | None = None) -> list[Candle]:
        """The last `limit` candles whose close time (open time + timeframe) is at or before `now`, oldest first.

        `now` is a replay time (default: the replay clock's now); a still-forming bar is never returned. A `now`
        before the data gives fewer candles (or none); a `now` past the end of the data is an error, since bars
        after it would be missing (a wall-clock time passed by mistake lands there).
        """
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, got {limit}")
        key = self._key(symbol, timeframe)
        step = timeframe_duration(timeframe)
        when = self.clock.now() if now is None else now
        open_times = self._open_times[key]
        if when >= open_times[-1] + 2 * step:
            raise ValueError(
                f"{when:%Y-%m-%d %H:%M} is past the replayed {symbol} {timeframe} data (last close "
                f"{open_times[-1] + step:%Y-%m-%d %H:%M}); pass a replay time such as the replay clock's now"
            )
        closed = bisect.bisect_right(open_times, when - step)
        return self._candles[key][max(closed - limit, 0) : closed]

    def latest_closed_bar(self, symbol: str, timeframe: str, now: datetime | None = None) -> Candle:
        """The most recent bar closed at `now` (default: replay now)."""
        when = self.clock.now() if now is None else now
        candles = self.closed_candles(symbol, timeframe, 1, when)
        if not candles:
            raise ValueError(f"no {symbol} {timeframe} bar has closed by {when:%Y-%m-%d %H:%M} in the replay")
        return candles[0]

    def last_price(self, symbol: str) -> Decimal:
        """The close of the symbol's last closed bar at replay now, on its finest timeframe (1h in the bundled data).

        The close, not the forming bar's open (on Binance the two are usually within a tick of each other): the close
        never reveals anything of a bar that has not closed yet. Usable as the paper exchange's `price_of`.
        """
        return self.latest_closed_bar(symbol, self.timeframes(symbol)[0]).close

    def ticker(self, symbol: str) -> ReplayTicker:
        """Last = bid = ask = `last_price`, at the replay time (from one reading of the clock)."""
        position = self.clock.position()
        price = self.latest_closed_bar(symbol, self.timeframes(symbol)[0], position.now).close
        return ReplayTicker(symbol, price, price, price, position.now, loop=position.loop)

    # Time

    def next_close(self, timeframe: str) -> NextClose:
        """When the next bar of `timeframe` closes, in replay and wall time (the scheduler waits on the wall time).

        With the default speed a 1h bar closes every 10 wall seconds. When the data runs out before the next close,
        the answer is the wrap-around (see `NextClose`).
        """
        if not any(known == timeframe for _, known in self._candles):
            available = ", ".join(sorted({known for _, known in self._candles}, key=timeframe_duration))
            raise ValueError(f"the replay has no {timeframe!r} candles (available: {available})")
        step = timeframe_duration(timeframe)
        position = self.clock.position()
        following = _floor(position.now, timeframe) + step
        if following < self.clock.end:
            wall = self.clock.wall_time_of(following, position.loop)
            return NextClose(timeframe, following, wall, position.loop)
        wrap = self.clock.wall_time_of(self.clock.end, position.loop)
        return NextClose(timeframe, _floor(self.clock.start, timeframe), wrap, position.loop + 1)

    def wall_time_of(self, replay_time: datetime, loop: int | None = None) -> datetime:
        """The wall time at which the replay reaches `replay_time` (in `loop`, default: the current one)."""
        return self.clock.wall_time_of(replay_time, loop)

    def describe(self, symbol: str | None = None, timeframe: str | None = None) -> str:
        """A label for whatever shows replayed prices or times, e.g.
        "replay of binance BTC/USDT 1h 2024-01-13 -> 2024-09-06 at 360x (loop 1)"."""
        if symbol is None:
            what = ", ".join(f"{s} {t}" for s, t in self.series)
        else:
            what = f"{symbol} {timeframe or self.timeframes(symbol)[0]}"
            if timeframe is not None:
                self._key(symbol, timeframe)
        speed = f"{self.clock.speed:g}"
        return (
            f"{SOURCE} of {self.exchange_id} {what} {self.clock.start:%Y-%m-%d} -> {self.clock.end:%Y-%m-%d} "
            f"at {speed}x (loop {self.clock.loop()})"
        )

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.symbols:
            raise ValueError(f"the replay has no symbol {symbol!r} (available: {', '.join(self.symbols)})")

    def _key(self, symbol: str, timeframe: str) -> tuple[str, str]:
        self._check_symbol(symbol)
        if (symbol, timeframe) not in self._candles:
            available = ", ".join(self.timeframes(symbol))
            raise ValueError(f"the replay has no {symbol} {timeframe!r} candles (available: {available})")
        return symbol, timeframe


class ReplayMarketData:
    """The market-data half of the `Exchange` protocol over a replay market, in place of ccxt public data.

    Orders are not here: paper fills stay in `PaperExchange`, given `market.last_price` as `price_of`,
    `market.clock.now` as its clock and this adapter's `fetch_candles` as its candle source.
    """

    source = SOURCE

    def __init__(self, market: ReplayMarket) -> None:
        self.market = market
        self.id = market.exchange_id

    def fetch_candles(self, symbol: str, timeframe: str, limit: int, now: datetime) -> list[Candle]:
        """The last `limit` candles closed by `now`, a replay time (use the replay clock as the caller's clock)."""
        return self.market.closed_candles(symbol, timeframe, limit, now)

    def fetch_ticker(self, symbol: str) -> ReplayTicker:
        return self.market.ticker(symbol)


def load_replay_market(
    directory: Path,
    wall: WallClock,
    speed: float = DEFAULT_SPEED,
    warmup_bars: int = DEFAULT_WARMUP_BARS,
    files: Sequence[tuple[str, str, str]] = REPLAY_CANDLE_FILES,
    wall_start: datetime | None = None,
) -> ReplayMarket:
    """A replay market over the bundled candle files in `directory` (data/candles).

    The replay starts `warmup_bars` bars of the finest timeframe after its first candle (300 1h bars: 2024-01-13
    12:00, when those 300 bars have closed). It ends at the earliest of each series' last close plus one of its
    bars (2024-09-06 05:00: the last 1h bar closes at 04:00), so the last bar is the latest closed one for a full bar
    (10 wall seconds by default) before the wrap-around; no series is missing a bar before then.
    """
    if warmup_bars < 1:
        raise ValueError(f"warmup_bars must be 1 or more (a bar must have closed at the start), got {warmup_bars}")
    candles = {(symbol, timeframe): read_candle_csv(directory / name, timeframe) for name, symbol, timeframe in files}
    finest = min((timeframe for _, timeframe in candles), key=timeframe_duration)
    finest_step = timeframe_duration(finest)
    first_open = max(series[0].open_time for (_, tf), series in candles.items() if tf == finest)
    start = first_open + warmup_bars * finest_step
    end = min(series[-1].open_time + 2 * timeframe_duration(tf) for (_, tf), series in candles.items())
    clock = ReplayClock(wall, start, end, speed, wall_start)
    return ReplayMarket(candles, clock)


def _floor(moment: datetime, timeframe: str) -> datetime:
    """The `timeframe` bar boundary at or before `moment`: on the grid from the Unix epoch, weekly bars from a Monday
    (as Binance draws them and `read_candle_csv` checks)."""
    origin = _WEEK_ORIGIN if timeframe == "1w" else _EPOCH
    return moment - (moment - origin) % timeframe_duration(timeframe)
