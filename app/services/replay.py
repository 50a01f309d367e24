"""The replay market as the service uses it: one replay for every process of an installation.

The web app, the scheduler and the command line are separate processes; they agree on the replay's time because
the wall-clock moment the replay started is stored once (an operator setting) and every process derives the replay
time from it. The candles are loaded once per process.

The replay plays once and holds at the end of its data (see `exchanges.replay`). `restart_replay` records a new
start, so it plays again from the beginning; it refuses while a watch or a paper account has already been past that
beginning, since their clocks only move forward and they would sit out the whole new pass.
"""

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ConflictError
from app.models import Account, AccountKind, OperatorSetting, SchedulerLease, Watch
from app.services import Clock, audit, system_clock
from app.services.upkeep import BarSource
from exchanges.candles import Candle
from exchanges.replay import ReplayMarket, load_replay_market
from exchanges.timeframes import timeframe_duration

STARTED_AT = "replay_started_at"
RESTART_EVENT = "replay.restart"
# The replay starts 365 1h bars into 2024 (2024-01-16 05:00): enough history for every indicator, and the demo's
# ETH/USDT watch (rules:ema_rsi_volume) buys on the 09:00 bar and sells on the 13:00 bar's SELL signal, so a fresh
# install shows a signal, a paper trade and equity moving within about a minute at the default speed.
START_BARS = 365

# By wall clock too: production has one (the system clock); a test's own clock gets its own replay. Bounded: each
# replay holds every bundled candle (~82,000), so a caller making a clock per request must not grow the process.
_markets: dict[tuple[Path, float, datetime, Clock], ReplayMarket] = {}
MARKETS_KEPT = 4
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
            while len(_markets) >= MARKETS_KEPT:
                del _markets[next(iter(_markets))]  # the oldest loaded
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


@dataclass(frozen=True)
class ReplayStatus:
    """Where the installation's replay is. `description` is `ReplayMarket.describe()` (what, from when to when in
    replay time, speed, and "now ..." or "finished at ... (held at the last bar)"); `started_at` and `ends_at` are
    the wall times (UTC) it started and reaches its end; `market` is the scheduler's configured market, so a front
    end can say when scheduled watches do not read the replay at all."""

    description: str
    started_at: datetime
    ends_at: datetime
    finished: bool
    market: str


@dataclass(frozen=True)
class AheadOfReplay:
    """The state a replay restart would strand: paper accounts whose clock (a bar's close) and watches whose last
    bar closed after the replay's start, within the replayed data. Ids ascending; `latest` is the latest of those
    times (None when there are none)."""

    account_ids: list[int]
    watch_ids: list[int]
    latest: datetime | None

    def __bool__(self) -> bool:
        return bool(self.account_ids or self.watch_ids)


def replay_status(session: Session, settings: Settings, wall: Clock = system_clock) -> ReplayStatus:
    """The replay's status now (recording its start when this is the installation's first use of it)."""
    market = replay_market(session, settings, wall)
    return ReplayStatus(
        description=market.describe(),
        started_at=market.clock.wall_start,
        ends_at=market.clock.wall_end,
        finished=market.clock.finished(),
        market=settings.scheduler.market,
    )


def ahead_of_replay(session: Session, market: ReplayMarket) -> AheadOfReplay:
    """Paper accounts and watches whose replay clock is past `market`'s start (see `AheadOfReplay`).

    A live account, and a watch trading one, runs on the exchange's real time and is never ahead of a replay; a
    clock beyond the replayed data is real time too (a store or ccxt market), which no replay restart changes.
    """
    start, end = market.clock.start, market.clock.end
    accounts = session.scalars(
        select(Account).where(
            Account.kind == AccountKind.PAPER, Account.last_bar_at > start, Account.last_bar_at <= end
        )
    ).all()
    live = select(Account.id).where(Account.kind == AccountKind.LIVE)
    candidates = session.scalars(
        select(Watch).where(
            Watch.last_bar_at.is_not(None),
            Watch.last_bar_at <= end,
            Watch.account_id.is_(None) | Watch.account_id.not_in(live),
        )
    ).all()
    # A watch records its last bar's open time; what it has seen of the replay ends at that bar's close.
    closes = {
        watch.id: watch.last_bar_at + timeframe_duration(watch.timeframe) for watch in candidates if watch.last_bar_at
    }
    watch_ids = sorted(watch_id for watch_id, close in closes.items() if start < close <= end)
    times = [a.last_bar_at for a in accounts if a.last_bar_at] + [closes[watch_id] for watch_id in watch_ids]
    return AheadOfReplay(sorted(a.id for a in accounts), watch_ids, max(times, default=None))


def restart_replay(session: Session, settings: Settings, by: str, wall: Clock = system_clock) -> ReplayStatus:
    """Start the installation's replay over: record `wall()` as its new start (audited), so every process that asks
    for the replay from now on plays it from the beginning. The caller commits.

    Raises `ConflictError` (field `replay`) while a scheduler holds its lease (a running scheduler keeps the start
    it read when it started, and would go on claiming bars of the old pass), or while paper accounts or watches are
    ahead of the replay's start (see `ahead_of_replay`): their clocks only move forward, so after a restart the
    watches would not run and the accounts would refuse to trade until the new pass caught up with them, hours
    later. Nothing here resets them: a watch's runs are unique per bar, so even a reset watch could not run those
    bars again, and a paper account's clock is its whole trading history.
    """
    now = wall()
    lease = session.scalar(select(SchedulerLease).where(SchedulerLease.expires_at > now))
    if lease is not None:
        raise ConflictError(
            f"cannot restart the replay while a scheduler is running ({lease.holder}, lease until "
            f"{lease.expires_at:%Y-%m-%d %H:%M:%S} UTC): stop it first, since it keeps the replay start it read when "
            "it started",
            field="replay",
        )
    market = replay_market(session, settings, wall)
    ahead = ahead_of_replay(session, market)
    if ahead:
        raise ConflictError(_ahead_message(market, ahead), field="replay", details=_ahead_details(ahead))
    row = session.get(OperatorSetting, STARTED_AT)
    assert row is not None  # replay_market recorded it
    previous = str(row.value)
    row.value, row.updated_by = now.isoformat(), by
    audit.record(
        session,
        RESTART_EVENT,
        f"replay restarted by {by} (it had started {previous})",
        user_id=None,
        details={"started_at": now.isoformat(), "previous": previous, "by": by},
        at=now,
    )
    return replay_status(session, settings, wall)


def _ahead_message(market: ReplayMarket, ahead: AheadOfReplay) -> str:
    parts = []
    if ahead.account_ids:
        parts.append(_counted(len(ahead.account_ids), "paper account", ahead.account_ids))
    if ahead.watch_ids:
        parts.append(_counted(len(ahead.watch_ids), "watch", ahead.watch_ids, plural="watches"))
    assert ahead.latest is not None
    advice = []
    if ahead.watch_ids:
        advice.append("delete those watches (with their run history) and add new ones")
    if ahead.account_ids:
        advice.append("paper accounts cannot be reset: to replay with them, start from an empty database")
    return (
        f"cannot restart the replay: {' and '.join(parts)} already went past its start "
        f"{market.clock.start:%Y-%m-%d %H:%M} (up to {ahead.latest:%Y-%m-%d %H:%M}) and their clocks only move "
        f"forward, so they would sit out the new pass; {'; '.join(advice)}"
    )


def _ahead_details(ahead: AheadOfReplay) -> dict[str, object]:
    return {
        "account_ids": ahead.account_ids,
        "watch_ids": ahead.watch_ids,
        "latest": ahead.latest.isoformat() if ahead.latest else None,
    }


def _counted(count: int, noun: str, ids: list[int], plural: str | None = None) -> str:
    name = noun if count == 1 else plural or f"{noun}s"
    return f"{count} {name} ({', '.join(f'#{i}' for i in ids)})"
