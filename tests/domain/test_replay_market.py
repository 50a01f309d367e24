"""The replay market: the bundled 2024 Binance candles on an accelerated clock driven by a fake wall clock."""

import csv
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.base import OrderRequest
from exchanges.book import AccountBook
from exchanges.candles import read_candle_csv
from exchanges.markets import MarketCatalog
from exchanges.orders import OrderSide, OrderStatus, OrderType
from exchanges.paper import PaperExchange
from exchanges.replay import (
    REPLAY_CANDLE_FILES,
    ReplayClock,
    ReplayMarket,
    ReplayMarketData,
    ReplayTicker,
    load_replay_market,
)
from tests.conftest import PROJECT_ROOT

CANDLES_DIR = PROJECT_ROOT / "data" / "candles"
WALL_START = datetime(2030, 5, 1, 9, tzinfo=UTC)
REPLAY_START = datetime(2024, 1, 13, 12, tzinfo=UTC)  # 300 1h bars after 2024-01-01 00:00
LAST_CLOSE = datetime(2024, 9, 6, 4, tzinfo=UTC)  # the last 1h bar (03:00) closes
REPLAY_END = datetime(2024, 9, 6, 4, 59, 59, 999_999, tzinfo=UTC)  # where it holds: the 04:00 bar never closes
HOUR = timedelta(hours=1)
# Every series read once for the whole module: building markets over them is cheap.
SERIES = {(symbol, tf): read_candle_csv(CANDLES_DIR / name, tf) for name, symbol, tf in REPLAY_CANDLE_FILES}


class FakeWall:
    def __init__(self, now=WALL_START):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def market(speed=360, wall=None):
    wall = wall or FakeWall()
    return ReplayMarket(SERIES, ReplayClock(wall, REPLAY_START, REPLAY_END, speed)), wall


def csv_rows(name):
    """The file's rows as written, keyed by open time: what the replay must hand out unchanged."""
    with (CANDLES_DIR / name).open(newline="") as handle:
        return {datetime.fromtimestamp(int(row["timestamp"]) / 1000, UTC): row for row in csv.DictReader(handle)}


def test_load_replays_the_2024_files_from_300_bars_in_to_the_end_of_the_data():
    replay = load_replay_market(CANDLES_DIR, FakeWall())
    assert (replay.clock.start, replay.clock.end, replay.clock.speed) == (REPLAY_START, REPLAY_END, 360)
    assert replay.series == [("BTC/USDT", "1d"), ("BTC/USDT", "1h"), ("ETH/USDT", "1d"), ("ETH/USDT", "1h")]
    assert len(replay.closed_candles("BTC/USDT", "1h", 1000)) == 300  # the warm-up history, all closed
    assert replay.source == "replay"
    assert replay.last_close == LAST_CLOSE
    assert replay.describe("BTC/USDT") == (
        "replay of binance BTC/USDT 1h 2024-01-13 12:00 -> 2024-09-06 04:00 at 360x: now 2024-01-13 12:00"
    )


def test_the_default_speed_closes_one_1h_bar_every_10_wall_seconds():
    replay, wall = market()
    opens = []
    for _ in range(6):
        opens.append(replay.latest_closed_bar("BTC/USDT", "1h").open_time)
        wall.advance(seconds=9, microseconds=999_999)
        assert replay.latest_closed_bar("BTC/USDT", "1h").open_time == opens[-1]  # not yet
        wall.advance(microseconds=1)
    assert opens == [REPLAY_START - HOUR + i * HOUR for i in range(6)]
    assert replay.clock.now() == REPLAY_START + 6 * HOUR


def test_exact_candles_at_a_given_wall_time_are_the_csv_rows():
    replay, wall = market()
    wall.advance(seconds=25)  # replay 14:30: the 14:00 bar is still forming
    assert replay.clock.now() == datetime(2024, 1, 13, 14, 30, tzinfo=UTC)
    candles = replay.closed_candles("ETH/USDT", "1h", 3)
    rows = csv_rows("binance_ETHUSDT_1h_2024-01_2024-09.csv")
    assert [c.open_time.hour for c in candles] == [11, 12, 13]
    for candle in candles:
        row = rows[candle.open_time]
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == tuple(
            Decimal(row[name]) for name in ("open", "high", "low", "close", "volume")
        )
    assert replay.last_price("ETH/USDT") == Decimal(rows[datetime(2024, 1, 13, 13, tzinfo=UTC)]["close"])
    daily = replay.closed_candles("BTC/USDT", "1d", 2)
    assert [c.open_time.day for c in daily] == [11, 12]  # the 13th's daily bar closes at midnight


def test_the_replay_plays_once_and_holds_at_its_last_bar():
    replay, wall = market()
    last_rows = list(csv_rows("binance_BTCUSDT_1h_2024-01_2024-09.csv").values())
    last_close = Decimal(last_rows[-1]["close"])
    # 236 days of replay at 360x: 15.7 wall hours.
    assert replay.clock.wall_end - WALL_START == (REPLAY_END - REPLAY_START) / 360
    wall.now = replay.clock.wall_end - timedelta(microseconds=1)
    assert replay.latest_closed_bar("BTC/USDT", "1h").close == last_close
    assert not replay.clock.finished()
    assert replay.describe("BTC/USDT", "1h").endswith("at 360x: now 2024-09-06 04:59")
    for later in (timedelta(0), timedelta(seconds=10), timedelta(days=30), 3 * (replay.clock.wall_end - WALL_START)):
        wall.now = replay.clock.wall_end + later
        assert (replay.clock.now(), replay.clock.finished()) == (REPLAY_END, True)
        assert replay.latest_closed_bar("BTC/USDT", "1h").close == last_close  # never wraps back to the start
        assert replay.latest_closed_bar("ETH/USDT", "1d").open_time == datetime(2024, 9, 5, tzinfo=UTC)
        assert replay.next_close("1h") is None and replay.next_close("1d") is None
        ticker = replay.ticker("BTC/USDT")
        assert (ticker.last, ticker.at, ticker.source) == (last_close, REPLAY_END, "replay")
    assert replay.describe() == (
        "replay of binance BTC/USDT 1d, BTC/USDT 1h, ETH/USDT 1d, ETH/USDT 1h 2024-01-13 12:00 -> 2024-09-06 04:00 "
        "at 360x: finished at 2024-09-06 04:00 (held at the last bar)"
    )


def test_next_close_in_replay_and_wall_time():
    replay, wall = market()
    wall.advance(seconds=3)
    hourly = replay.next_close("1h")
    assert (hourly.replay_time, hourly.wall_time) == (REPLAY_START + HOUR, WALL_START + timedelta(seconds=10))
    daily = replay.next_close("1d")
    assert daily.replay_time == datetime(2024, 1, 14, tzinfo=UTC)
    assert daily.wall_time == WALL_START + timedelta(seconds=120)  # 12 replay hours
    assert replay.wall_time_of(datetime(2024, 1, 14, tzinfo=UTC)) == daily.wall_time
    wall.now = hourly.wall_time
    assert replay.latest_closed_bar("BTC/USDT", "1h").open_time + HOUR == hourly.replay_time


def test_no_bar_closes_after_the_last_one_in_the_data():
    replay, wall = market()
    wall.now = replay.clock.wall_time_of(datetime(2024, 9, 6, 3, 30, tzinfo=UTC))
    assert replay.next_close("1h").replay_time == LAST_CLOSE  # the last bar, 03:00, is still forming
    assert replay.next_close("1d") is None  # the 6th's daily bar would close after the end of the data
    wall.now = replay.clock.wall_time_of(LAST_CLOSE)
    assert replay.latest_closed_bar("BTC/USDT", "1h").open_time == LAST_CLOSE - HOUR
    assert replay.next_close("1h") is None
    with pytest.raises(ValueError, match="outside the replay 2024-01-13 12:00 -> 2024-09-06 04:59"):
        replay.wall_time_of(datetime(2024, 9, 6, 5, tzinfo=UTC))


def test_unknown_symbol_or_timeframe_names_what_is_available():
    replay, _ = market()
    with pytest.raises(ValueError, match=r"no symbol 'SOL/USDT' \(available: BTC/USDT, ETH/USDT\)"):
        replay.closed_candles("SOL/USDT", "1h", 10)
    with pytest.raises(ValueError, match=r"no BTC/USDT '4h' candles \(available: 1h, 1d\)"):
        replay.closed_candles("BTC/USDT", "4h", 10)
    with pytest.raises(ValueError, match=r"no symbol 'SOL/USDT'"):
        replay.last_price("SOL/USDT")
    with pytest.raises(ValueError, match=r"no '4h' candles \(available: 1h, 1d\)"):
        replay.next_close("4h")


def test_a_time_past_the_replayed_data_is_refused_not_answered_with_stale_bars():
    replay, _ = market()
    with pytest.raises(ValueError, match=r"past the replayed BTC/USDT 1h data .*replay clock's now"):
        replay.closed_candles("BTC/USDT", "1h", 10, now=WALL_START)
    assert replay.closed_candles("BTC/USDT", "1h", 10, now=datetime(2023, 6, 1, tzinfo=UTC)) == []


def test_the_clock_refuses_a_bad_speed_or_span():
    with pytest.raises(ValueError, match="speed must be a positive number"):
        ReplayClock(FakeWall(), REPLAY_START, REPLAY_END, speed=0)
    with pytest.raises(ValueError, match="must be after its start"):
        ReplayClock(FakeWall(), REPLAY_END, REPLAY_START)


def test_a_market_held_past_the_end_of_a_series_is_refused():
    clock = ReplayClock(FakeWall(), REPLAY_START, datetime(2024, 9, 6, 5, tzinfo=UTC))
    with pytest.raises(
        ValueError, match="BTC/USDT 1h ends at 2024-09-06 04:00, before the replay end 2024-09-06 05:00"
    ):
        ReplayMarket(SERIES, clock)


def test_a_market_whose_start_has_no_closed_bar_is_refused():
    clock = ReplayClock(FakeWall(), datetime(2024, 1, 1, tzinfo=UTC), REPLAY_END)
    with pytest.raises(ValueError, match="no bar closed by the replay start"):
        ReplayMarket(SERIES, clock)


def test_the_adapter_serves_candles_and_tickers_and_feeds_the_paper_exchange():
    replay, wall = market()
    wall.advance(seconds=40)
    data = ReplayMarketData(replay)
    now = replay.clock.now()
    assert data.fetch_candles("BTC/USDT", "1h", 5, now) == replay.closed_candles("BTC/USDT", "1h", 5)
    ticker = data.fetch_ticker("BTC/USDT")
    assert isinstance(ticker, ReplayTicker)
    assert (ticker.last, ticker.at, ticker.source) == (replay.last_price("BTC/USDT"), now, "replay")
    catalog = MarketCatalog.from_snapshot(
        "binance", PROJECT_ROOT / "data" / "markets" / "binance_markets_snapshot.json"
    )
    paper = PaperExchange(
        AccountBook("USDT", Decimal(100)), catalog, replay.last_price, replay.clock.now, candles=data.fetch_candles
    )
    state = paper.create_order(OrderRequest("BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal("0.0005"), "r1"))
    assert (state.status, state.average_price, state.updated_at) == (
        OrderStatus.CLOSED,
        replay.last_price("BTC/USDT"),
        now,
    )
    assert paper.fetch_candles("ETH/USDT", "1d", 1, now) == replay.closed_candles("ETH/USDT", "1d", 1)


offsets = st.integers(min_value=0, max_value=3 * 5_700 * 10 * 10**6)  # up to ~3 replays' wall microseconds


@settings(max_examples=200, deadline=None)
@given(offset=offsets, timeframe=st.sampled_from(["1h", "1d"]), limit=st.integers(1, 400))
def test_closed_candles_never_include_a_bar_still_forming(offset, timeframe, limit):
    replay, wall = market()
    wall.advance(microseconds=offset)
    now = replay.clock.now()
    candles = replay.closed_candles("BTC/USDT", timeframe, limit)
    step = HOUR if timeframe == "1h" else 24 * HOUR
    assert 1 <= len(candles) <= limit
    assert all(c.open_time + step <= now for c in candles)
    assert now < candles[-1].open_time + 2 * step  # and the latest closed bar is there
    assert [b.open_time - a.open_time for a, b in itertools.pairwise(candles)] == [step] * (len(candles) - 1)


@settings(max_examples=200, deadline=None)
@given(first=offsets, later=offsets)
def test_the_replay_time_and_the_latest_closed_bar_only_move_forward(first, later):
    first, later = sorted((first, later))
    replay, wall = market()
    wall.advance(microseconds=first)
    before = (replay.clock.now(), replay.latest_closed_bar("ETH/USDT", "1h").open_time)
    wall.advance(microseconds=later - first)
    after = (replay.clock.now(), replay.latest_closed_bar("ETH/USDT", "1h").open_time)
    assert before <= after


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=10**12),
    speed=st.one_of(st.integers(1, 100_000), st.floats(0.5, 100_000.0)),
    timeframe=st.sampled_from(["1h", "1d"]),
)
def test_at_the_wall_time_next_close_gives_the_new_bar_has_closed(offset, speed, timeframe):
    replay, wall = market(speed=speed)
    wall.advance(microseconds=offset)
    before = replay.latest_closed_bar("BTC/USDT", timeframe).open_time
    following = replay.next_close(timeframe)
    if following is None:  # past the last close of the data: nothing closes, however late
        wall.now += 100 * (replay.clock.wall_end - WALL_START)
        assert replay.latest_closed_bar("BTC/USDT", timeframe).open_time == before
        return
    assert following.wall_time > wall.now
    wall.now = following.wall_time
    latest = replay.latest_closed_bar("BTC/USDT", timeframe)
    assert latest.open_time + (HOUR if timeframe == "1h" else 24 * HOUR) == following.replay_time
    assert latest.open_time != before
