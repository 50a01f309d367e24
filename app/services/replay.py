"""The replay market as the service uses it: one replay for every process of an installation.

The web app, the scheduler and the command line are separate processes; they agree on the replay's time because
the wall-clock moment the replay started is stored once (an operator setting) and every process derives the replay
time from it. The candles are loaded once per process.
"""

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import OperatorSetting
from app.services import Clock, system_clock
from app.services.upkeep import BarSource
from exchanges.candles import Candle
from exchanges.replay import ReplayMarket, load_replay_market
from exchanges.timeframes import timeframe_duration

STARTED_AT = "replay_started_at"
# The replay starts 365 1h bars into 2024 (2024-01-16 05:00): enough history for every indicator, and the demo's
# ETH/USDT watch (rules:ema_rsi_volume) buys on the 09:00 bar and is stopped out on the 14:00 bar, so a fresh
# install shows a signal, a paper trade and equity moving within about a minute at the default speed.
START_BARS = 365

# By wall clock too: production has one (the system clock); a test's own clock gets its own replay.
_markets: dict[tuple[Path, float, datetime, Clock], ReplayMarket] = {}
_lock = threading.Lock()


def replay_market(session: Session, settings: Settings, wall: Clock = system_clock) -> ReplayMarket:
    """The installation's replay of the bundled 2024 candles at `settings.scheduler.replay_speed`.

    The first call of an installation records its start (and commits that one row); later calls, in any process,
    replay from the same moment.
    """
    started = replay_started_at(session, wall)
    key = (settings.data_dir, settings.scheduler.replay_speed, started, wall)
    with _lock:
        market = _markets.get(key)
        if market is None:
            market = load_replay_market(
                settings.data_dir / "candles",
                wall,
                speed=settings.scheduler.replay_speed,
                warmup_bars=START_BARS,
                wall_start=started,
            )
            _markets[key] = market
    return market


def replay_started_at(session: Session, wall: Clock = system_clock) -> datetime:
    """When this installation's replay started (wall time, UTC), recorded on first use."""
    row = session.get(OperatorSetting, STARTED_AT)
    if row is None:
        session.add(OperatorSetting(key=STARTED_AT, value=wall().isoformat(), updated_by="replay"))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # another process recorded it first: theirs is the installation's start
        row = session.get(OperatorSetting, STARTED_AT)
        assert row is not None  # recorded just now, by us or by the process that won
    return datetime.fromisoformat(str(row.value))


def replay_bars(market: ReplayMarket, timeframe: str, now: datetime) -> BarSource:
    """The replay as upkeep's bar source: `(symbol, after, until)` -> its closed candles of `timeframe` whose close
    time is in (after, until], as of the replay time `now`."""
    duration = timeframe_duration(timeframe)

    def bars(symbol: str, after: datetime, until: datetime) -> list[Candle]:
        wanted = max(1, int((until - after) / duration) + 1)
        candles = market.closed_candles(symbol, timeframe, wanted, min(now, until))
        return [candle for candle in candles if after < candle.open_time + duration <= until]

    return bars
