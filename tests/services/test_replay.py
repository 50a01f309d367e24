"""The installation's replay on SQLite and PostgreSQL with a controllable wall clock: it plays once and holds at its
last bar (nothing is due, nothing fails), its status, and a restart refused while anything has gone past its start."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import current_settings
from app.errors import ConflictError
from app.extensions import db
from app.models import AuditEvent, OperatorSetting, RunStatus, SchedulerLease, Watch
from app.services import replay, watch_runs
from app.services.credentials import signal_services
from tests import factories

WALL_START = datetime(2030, 5, 1, 9, tzinfo=UTC)
REPLAY_START = datetime(2024, 1, 16, 5, tzinfo=UTC)  # START_BARS (365) 1h bars into 2024
LAST_BAR = datetime(2024, 9, 6, 3, tzinfo=UTC)  # the last 1h bar in the data; it closes at 04:00
SETTLE = timedelta(seconds=5)


class FakeWall:
    def __init__(self, now=WALL_START):
        self.now = now

    def __call__(self):
        return self.now


def started(wall):
    return replay.replay_market(db.session, current_settings(), wall)


def test_a_fresh_replay_records_its_start_and_says_where_it_is(app):
    wall = FakeWall()
    status = replay.replay_status(db.session, current_settings(), wall)
    assert status.description == (
        "replay of binance BTC/USDT 1d, BTC/USDT 1h, ETH/USDT 1d, ETH/USDT 1h 2024-01-16 05:00 -> 2024-09-06 04:00 "
        "at 360x: now 2024-01-16 05:00"
    )
    assert (status.started_at, status.finished, status.market) == (WALL_START, False, "replay")
    # 5,616 1h bars (less a microsecond of the last, rounded up) at 10 wall seconds each.
    assert status.ends_at - WALL_START == timedelta(hours=15, minutes=36)
    assert db.session.get(OperatorSetting, replay.STARTED_AT).value == WALL_START.isoformat()


def test_once_finished_the_replay_holds_at_its_last_bar_and_says_so(app):
    wall = FakeWall()
    market = started(wall)
    wall.now = market.clock.wall_end + timedelta(days=2)  # a `make run` left over the weekend
    status = replay.replay_status(db.session, current_settings(), wall)
    assert status.finished and status.ends_at == market.clock.wall_end
    assert status.description.endswith("at 360x: finished at 2024-09-06 04:00 (held at the last bar)")
    assert market.latest_closed_bar("BTC/USDT", "1h").open_time == LAST_BAR


def test_after_the_end_the_last_bar_runs_once_then_nothing_is_due_and_no_run_fails(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    behind = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion", auto_execute=True)
    done = factories.watch(db.session, user, symbol="ETH/USDT", last_bar_at=LAST_BAR)
    db.session.commit()
    wall = FakeWall()
    market = started(wall)
    wall.now = market.clock.wall_end + timedelta(hours=1)
    # Held just before the next bar would close, so even the last bar has settled: it is due, once.
    [due] = watch_runs.due_runs(db.session, market.clock.now(), SETTLE)
    assert (due.watch_id, due.bar_time) == (behind.id, LAST_BAR)
    run = watch_runs.claim(db.session, due, wall())
    finished = watch_runs.execute_run(
        db.session, current_settings(), run.id, signal_services_for, "replay", market.clock.now, wall=wall
    )
    assert (finished.status, finished.failed_step, finished.error_code) == (RunStatus.SUCCEEDED, None, None)
    for later in (timedelta(seconds=10), timedelta(days=1), timedelta(days=365)):
        wall.now = market.clock.wall_end + later
        assert watch_runs.due_runs(db.session, market.clock.now(), SETTLE) == []
    assert db.session.get(Watch, done.id).last_bar_at == LAST_BAR


def signal_services_for(session, user_id):
    return signal_services(session, current_settings(), user_id)


def test_a_restart_replays_from_the_start_again_when_nothing_has_gone_past_it(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user, last_bar_at=REPLAY_START)  # at the start is not past it
    factories.watch(db.session, user, account, last_bar_at=REPLAY_START - timedelta(hours=1))
    live = factories.live_account(db.session, user, last_bar_at=datetime(2024, 5, 1, tzinfo=UTC))
    factories.watch(db.session, user, live, symbol="ETH/USDT", last_bar_at=datetime(2024, 5, 1, tzinfo=UTC))
    # A clock on real time (a store or ccxt market) is past the replayed data: no restart moves it.
    factories.paper_account(db.session, user, name="Real time", last_bar_at=datetime(2030, 5, 1, tzinfo=UTC))
    db.session.commit()
    wall = FakeWall()
    old = started(wall)
    wall.now = old.clock.wall_end + timedelta(days=1)
    status = replay.restart_replay(db.session, current_settings(), "ops", wall)
    db.session.commit()
    assert (status.started_at, status.finished) == (wall.now, False)
    assert status.description.endswith("at 360x: now 2024-01-16 05:00")
    row = db.session.get(OperatorSetting, replay.STARTED_AT)
    assert (row.value, row.updated_by) == (wall.now.isoformat(), "ops")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == replay.RESTART_EVENT))
    assert event.message == f"replay restarted by ops (it had started {WALL_START.isoformat()})"
    # Every process asking for the replay from now on plays it from the start.
    assert replay.replay_market(db.session, current_settings(), wall).clock.now() == REPLAY_START


def test_a_restart_is_refused_while_watches_or_paper_accounts_are_past_the_start(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user, last_bar_at=datetime(2024, 9, 6, 4, tzinfo=UTC))
    factories.watch(db.session, user, account, last_bar_at=LAST_BAR)
    factories.watch(db.session, user, symbol="ETH/USDT", timeframe="1d", last_bar_at=datetime(2024, 9, 5, tzinfo=UTC))
    # The 04:00 bar's close is the start itself: not past it.
    factories.watch(db.session, user, symbol="SOL/USDT", last_bar_at=REPLAY_START - timedelta(hours=1))
    db.session.commit()
    wall = FakeWall()
    started(wall)
    wall.now += timedelta(days=1)
    ids = sorted(db.session.scalars(select(Watch.id).where(Watch.symbol != "SOL/USDT")))
    with pytest.raises(ConflictError) as refused:
        replay.restart_replay(db.session, current_settings(), "ops", wall)
    assert refused.value.message == (
        f"cannot restart the replay: 1 paper account (#{account.id}) and 2 watches (#{ids[0]}, #{ids[1]}) already "
        "went past its start 2024-01-16 05:00 (up to 2024-09-06 04:00) and their clocks only move forward, so they "
        "would sit out the new pass; delete those watches (with their run history) and add new ones; paper accounts "
        "cannot be reset: to replay with them, start from an empty database"
    )
    assert (refused.value.field, refused.value.details["watch_ids"]) == ("replay", ids)
    db.session.rollback()
    assert db.session.get(OperatorSetting, replay.STARTED_AT).value == WALL_START.isoformat()


def test_a_restart_is_refused_while_a_scheduler_holds_its_lease(app):
    wall = FakeWall()
    started(wall)
    db.session.add(
        SchedulerLease(
            name="scheduler",
            holder="scheduler@host:42#abc",
            acquired_at=WALL_START,
            renewed_at=WALL_START,
            expires_at=WALL_START + timedelta(seconds=30),
        )
    )
    db.session.commit()
    with pytest.raises(ConflictError, match=r"while a scheduler is running \(scheduler@host:42#abc, lease until "):
        replay.restart_replay(db.session, current_settings(), "ops", wall)
    wall.now += timedelta(seconds=31)  # a scheduler that died: its lease has expired
    replay.restart_replay(db.session, current_settings(), "ops", wall)
