"""The replay market: the bundled real Binance candles played back on an accelerated clock, with no network.

A fresh install has no market data and maybe no network; the replay market lets watches produce signals anyway.
`ReplayClock` maps wall time to replay time (`replay_now = replay_start + (wall_now - wall_start) x speed`; by
default one 1h candle closes every 10 wall seconds), and `ReplayMarket` answers "which candles have closed by now"
from the candles in memory, never showing a still-forming bar. Both clocks are callables passed in: nothing here
sleeps or reads global time, so tests drive a fake wall clock.

The replay plays once and then holds at the end of the data: it never wraps around to its start. Everything that
remembers a replay time (a watch's last bar, a paper account's clock) only moves forward, so a jump back by eight
months would leave all of them in the replay's "future" and silently stop every watch. Held at its end, the replay
closes no new bar: nothing new is due and nothing fails.

Only the 2024 files (2024-01-01 -> 2024-09-06) are replayed by default. The bundled 2017-2021 files end on
2021-06-10, 935 days before the 2024 files begin: a replay across that hole would jump by two and a half years
from one bar to the next, and every indicator spanning it would mix two unrelated markets.

Everything shown from here is labelled "replay": `ReplayMarket.source`, `ReplayTicker.source` and
`ReplayMarket.describe()` ("replay of binance BTC/USDT 1h 2024-01-16 05:00 -> 2024-09-06 04:00 at 360x: now
2024-03-01 12:00", and once it has ended "...: finished at 2024-09-06 04:00 (held at the last bar)").
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
    """Where the replay is at one wall instant: the replay time, and whether it has reached its end (and holds)."""

    now: datetime
    finished: bool


@dataclass(frozen=True, slots=True)
class NextClose:
    """The next moment a new bar of a timeframe becomes the latest closed one: `replay_time` is that bar's close
    time, `wall_time` the wall time at which the replay reaches it."""

    timeframe: str
    replay_time: datetime
    wall_time: datetime


class ReplayClock:
    """Replay time from wall time: `replay_start + (wall_now - wall_start) x speed`, held at `end` once reached.

    `start` is the replay time at `wall_start` (default: the wall clock's reading when the clock is made) and `end`
    the last replay time the data answers for. From the wall time `wall_end` on, the replay time stays `end` and
    the replay is finished: it plays once and never wraps around (see the module docstring for why). A wall time
    before `wall_start` reads as `start`.

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
    def wall_end(self) -> datetime:
        """The wall time at which the replay reaches `end` and finishes (15.6 wall hours after `wall_start` for the
        bundled data at the default speed)."""
        return self.wall_time_of(self.end)

    def position(self) -> ReplayPosition:
        """Replay time and whether it has finished, from one reading of the wall clock (read both from here when
        both are shown)."""
        now = self.start + max(self.wall() - self.wall_start, timedelta(0)) * self.speed
        if now >= self.end:
            return ReplayPosition(self.end, True)
        return ReplayPosition(now, False)

    def now(self) -> datetime:
        """The replay time now: `end` from the moment the replay has finished."""
        return self.position().now

    def finished(self) -> bool:
        """Whether the replay has reached its end (it then holds there)."""
        return self.position().finished

    def wall_time_of(self, replay_time: datetime) -> datetime:
        """The wall time at which the replay reaches `replay_time`, which must lie in [start, end].

        The answer may be in the past. It is rounded up to the microsecond, so at the answer the replay has reached
        `replay_time` (a bar closing then reads as closed).
        """
        if not self.start <= replay_time <= self.end:
            raise ValueError(
                f"replay time {replay_time:%Y-%m-%d %H:%M} is outside the replay "
                f"{self.start:%Y-%m-%d %H:%M} -> {self.end:%Y-%m-%d %H:%M}"
            )
        micros = math.ceil(Fraction((replay_time - self.start) // _MICROSECOND) / Fraction(self.speed))
        return self.wall_start + micros * _MICROSECOND


@dataclass(frozen=True)
class ReplayTicker(Ticker):
    """A `Ticker` from the replay market: `at` is replay time, and it says so."""

    source: str = SOURCE


class ReplayMarket:
    """Closed candles and prices of some (symbol, timeframe) series, as of the replay clock's time.

    Every series must have a bar closed by `clock.start` and reach to `clock.end`: within [start, end] each
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
            if open_times[-1] + 2 * step <= clock.end:
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

    @property
    def last_close(self) -> datetime:
        """The close time of the last bar of the finest timeframe the replay shows: where it holds once finished
        (its clock's `end` is just before the bar after it would close)."""
        finest = min((timeframe for _, timeframe in self._candles), key=timeframe_duration)
        return _floor(self.clock.end, finest)

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

    def closed_count_at(self, symbol: str, timeframe: str, count: int) -> datetime | None:
        """The replay time at which `count` (>= 1) candles of the series have closed (the close of its `count`-th
        candle), or None when the series holds fewer."""
        if count < 1:
            raise ValueError(f"count must be 1 or more, got {count}")
        open_times = self._open_times[self._key(symbol, timeframe)]
        return open_times[count - 1] + timeframe_duration(timeframe) if count <= len(open_times) else None

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
        now = self.clock.now()
        price = self.latest_closed_bar(symbol, self.timeframes(symbol)[0], now).close
        return ReplayTicker(symbol, price, price, price, now)

    # Time

    def next_close(self, timeframe: str) -> NextClose | None:
        """When the next bar of `timeframe` closes, in replay and wall time; None when the replay ends before it
        (it then holds at its end and no bar closes any more).

        With the default speed a 1h bar closes every 10 wall seconds.
        """
        if not any(known == timeframe for _, known in self._candles):
            available = ", ".join(sorted({known for _, known in self._candles}, key=timeframe_duration))
            raise ValueError(f"the replay has no {timeframe!r} candles (available: {available})")
        step = timeframe_duration(timeframe)
        following = _floor(self.clock.now(), timeframe) + step
        if following > self.clock.end:
            return None
        return NextClose(timeframe, following, self.clock.wall_time_of(following))

    def wall_time_of(self, replay_time: datetime) -> datetime:
        """The wall time at which the replay reaches `replay_time` (see `ReplayClock.wall_time_of`)."""
        return self.clock.wall_time_of(replay_time)

    def describe(self, symbol: str | None = None, timeframe: str | None = None) -> str:
        """A label for whatever shows replayed prices or times: what is replayed, from when to when, how fast and
        where it is, e.g. "replay of binance BTC/USDT 1h 2024-01-16 05:00 -> 2024-09-06 04:00 at 360x: now
        2024-03-01 12:00", or once it has ended "...: finished at 2024-09-06 04:00 (held at the last bar)"."""
        if symbol is None:
            what = ", ".join(f"{s} {t}" for s, t in self.series)
        else:
            what = f"{symbol} {timeframe or self.timeframes(symbol)[0]}"
            if timeframe is not None:
                self._key(symbol, timeframe)
        position = self.clock.position()
        if position.finished:
            where = f"finished at {self.last_close:%Y-%m-%d %H:%M} (held at the last bar)"
        else:
            where = f"now {position.now:%Y-%m-%d %H:%M}"
        return (
            f"{SOURCE} of {self.exchange_id} {what} {self.clock.start:%Y-%m-%d %H:%M} -> "
            f"{self.last_close:%Y-%m-%d %H:%M} at {self.clock.speed:g}x: {where}"
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
    12:00, when those 300 bars have closed). It ends, and holds, one microsecond before the first bar missing from
    any series would close (2024-09-06 04:59:59.999999: the last 1h bar closes at 04:00): not at the last close
    itself, so a scheduler that waits a few seconds for a closed bar to settle still runs the last bar.
    """
    if warmup_bars < 1:
        raise ValueError(f"warmup_bars must be 1 or more (a bar must have closed at the start), got {warmup_bars}")
    candles = {(symbol, timeframe): read_candle_csv(directory / name, timeframe) for name, symbol, timeframe in files}
    finest = min((timeframe for _, timeframe in candles), key=timeframe_duration)
    finest_step = timeframe_duration(finest)
    first_open = max(series[0].open_time for (_, tf), series in candles.items() if tf == finest)
    start = first_open + warmup_bars * finest_step
    end = min(series[-1].open_time + 2 * timeframe_duration(tf) for (_, tf), series in candles.items()) - _MICROSECOND
    clock = ReplayClock(wall, start, end, speed, wall_start)
    return ReplayMarket(candles, clock)


def _floor(moment: datetime, timeframe: str) -> datetime:
    """The `timeframe` bar boundary at or before `moment`: on the grid from the Unix epoch, weekly bars from a Monday
    (as Binance draws them and `read_candle_csv` checks)."""
    origin = _WEEK_ORIGIN if timeframe == "1w" else _EPOCH
    return moment - (moment - origin) % timeframe_duration(timeframe)
