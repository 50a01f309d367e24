"""Backtests and watch runs as jobs, on SQLite and PostgreSQL with a controllable clock: a queued backtest is claimed
once and run by whoever claims it with a heartbeat; RUNNING backtests whose worker stopped beating are failed on a
worker's or the scheduler's start; the scheduler without a broker picks queued backtests up on its tick and runs
them one at a time; with a broker it only claims and enqueues each id once; a run delivered twice runs once."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import current_settings
from app.errors import ConflictError
from app.extensions import db
from app.jobs.backtests import mark_dead_backtests, run_queued_backtest
from app.jobs.scheduler import WatchScheduler, execute_watch_run
from app.models import Analysis, Backtest, BacktestStatus, RunStatus, WatchRun
from app.services import backtests, watch_runs
from app.services.backtests import BacktestRequest, create_backtest, prepare, record_backtest
from app.services.credentials import signal_services
from app.services.watch_runs import DueRun, RunNotQueuedError
from tests import factories

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)


class StepClock:
    """Each reading is `step` later than the last: a long run's wall time passes as it goes."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(0)) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now


@pytest.fixture
def owner(app):
    user = factories.user(db.session)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user


def queued(user, **fields) -> Backtest:
    values = {"user_id": user.id, "symbol": "BTC/USDT", "timeframe": "1h", "signals": "rules:sma_cross", **fields}
    record = create_backtest(db.session, current_settings(), BacktestRequest(**values))
    db.session.commit()
    return record


def fresh(backtest_id: int) -> Backtest:
    db.session.expire_all()
    return db.session.get(Backtest, backtest_id)


def running(user, heartbeat: datetime | None, started: datetime, worker: str = "gone:1") -> Backtest:
    record = queued(user)
    record.status, record.worker, record.started_at, record.heartbeat_at = (
        BacktestStatus.RUNNING,
        worker,
        started,
        heartbeat,
    )
    db.session.commit()
    return record


def test_a_queued_backtest_is_claimed_once_and_a_second_delivery_changes_nothing(app, owner):
    record = queued(owner)
    assert backtests.queued_backtest_ids(db.session) == [record.id]
    assert backtests.claim_backtest(db.session, record.id, "a:1", T0)
    assert not backtests.claim_backtest(db.session, record.id, "b:2", T0 + timedelta(seconds=1))
    assert backtests.queued_backtest_ids(db.session) == []
    with pytest.raises(ConflictError, match=r"is not queued \(it is running, worker a:1\)"):
        backtests.run_recorded_backtest(db.session, current_settings(), record.id, worker="b:2")
    assert not run_queued_backtest(app, record.id, "b:2")
    claimed = fresh(record.id)
    assert (claimed.status, claimed.worker, claimed.started_at, claimed.heartbeat_at) == (
        BacktestStatus.RUNNING,
        "a:1",
        T0,
        T0,
    )


def test_a_worker_runs_a_queued_backtest_beating_its_heartbeat_as_it_progresses(app, owner):
    record = queued(owner)
    # Every clock reading is 2 s later: the heartbeat moves on with each progress write.
    clock = StepClock(step=timedelta(seconds=2))
    assert run_queued_backtest(app, record.id, "w:7", clock)
    done = fresh(record.id)
    assert (done.status, done.progress, done.worker, done.error_message) == (BacktestStatus.SUCCEEDED, 1.0, "w:7", None)
    assert done.started_at == T0
    assert T0 < done.heartbeat_at < clock.now
    assert not run_queued_backtest(app, record.id, "w:8")  # delivered again: it already ran, nothing changes
    assert fresh(record.id).finished_at == done.finished_at and fresh(record.id).worker == "w:7"


def test_the_command_line_records_its_backtest_running_so_no_job_picks_it_up(app, owner):
    request = BacktestRequest(user_id=owner.id, symbol="BTC/USDT", timeframe="1h", signals="rules:sma_cross")
    prepared = prepare(db.session, current_settings(), request)
    record = record_backtest(db.session, prepared, worker="cli:3", now=T0)
    db.session.commit()
    assert (record.status, record.worker, record.heartbeat_at) == (BacktestStatus.RUNNING, "cli:3", T0)
    assert backtests.queued_backtest_ids(db.session) == []
    assert not run_queued_backtest(app, record.id, "sched:1")
    done, _ = backtests.run_recorded_backtest(db.session, current_settings(), record.id, prepared, worker="cli:3")
    assert done.status is BacktestStatus.SUCCEEDED


def test_running_backtests_whose_worker_stopped_beating_are_failed_with_the_reason(app, owner):
    dead = running(owner, heartbeat=T0 - timedelta(minutes=6), started=T0 - timedelta(minutes=30))
    never = running(owner, heartbeat=None, started=T0 - timedelta(minutes=10), worker="old:2")
    alive = running(owner, heartbeat=T0 - timedelta(minutes=1), started=T0 - timedelta(hours=2), worker="busy:3")
    waiting = queued(owner)

    assert mark_dead_backtests(app, lambda: T0) == [dead.id, never.id]
    assert (fresh(dead.id).status, fresh(dead.id).finished_at, fresh(dead.id).error_message) == (
        BacktestStatus.FAILED,
        T0,
        "the worker running it stopped (last heartbeat 2026-12-01 11:54:00 UTC, worker gone:1)",
    )
    assert fresh(never.id).error_message == (
        "the worker running it stopped (last heartbeat 2026-12-01 11:50:00 UTC, worker old:2)"
    )
    assert fresh(alive.id).status is BacktestStatus.RUNNING
    assert fresh(waiting.id).status is BacktestStatus.QUEUED
    assert mark_dead_backtests(app, lambda: T0) == []  # nothing twice


def stop(*schedulers: WatchScheduler) -> None:
    for scheduler in schedulers:
        scheduler.wait_idle(timeout=120)
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        scheduler.backtest_pool.shutdown(wait=True)
        scheduler.leadership.release()


def test_the_scheduler_fails_dead_backtests_at_start(app, owner):
    dead = running(owner, heartbeat=T0 - timedelta(minutes=20), started=T0 - timedelta(minutes=30))
    lines: list[str] = []
    scheduler = WatchScheduler(app, clock=lambda: T0, say=lines.append)
    try:
        assert fresh(dead.id).status is BacktestStatus.FAILED
        assert f"backtest(s) #{dead.id} failed: the worker running them stopped" in lines
    finally:
        stop(scheduler)


def test_the_leading_scheduler_runs_queued_backtests_one_at_a_time_without_a_broker(app, owner):
    first, second = queued(owner), queued(owner, signals="rules:ema_rsi_volume")
    clock = StepClock()
    leader = WatchScheduler(app, clock=clock, say=[].append)
    standby = WatchScheduler(app, clock=clock, say=[].append)
    try:
        report = leader.tick()
        assert report.leading and report.backtests == [first.id]
        assert standby.tick().backtests == []  # only the leader picks backtests up
        leader.wait_idle(timeout=120)
        done = fresh(first.id)
        assert (done.status, done.worker, done.progress) == (BacktestStatus.SUCCEEDED, leader.worker, 1.0)
        assert done.heartbeat_at is not None
        assert fresh(second.id).status is BacktestStatus.QUEUED
        assert leader.tick().backtests == [second.id]
        leader.wait_idle(timeout=120)
        assert fresh(second.id).status is BacktestStatus.SUCCEEDED
        assert leader.tick().backtests == []
    finally:
        stop(leader, standby)


def services_for(session, user_id):
    return signal_services(session, current_settings(), user_id)


def claimed_run(owner) -> WatchRun:
    account = factories.paper_account(db.session, owner)
    watch = factories.watch(db.session, owner, account, signal_source="rules:rsi_reversion")
    db.session.commit()
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    assert run is not None
    return run


def test_a_run_delivered_twice_is_executed_once(app, owner):
    run = claimed_run(owner)
    first = execute_watch_run(app, run.id, lambda: BUY_BAR + timedelta(hours=1), "w:1")
    assert first is not None and f"run #{run.id}" in first
    assert execute_watch_run(app, run.id, lambda: BUY_BAR + timedelta(hours=1), "w:2") is None
    with pytest.raises(RunNotQueuedError):
        watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "store")
    db.session.expire_all()
    done = db.session.get(WatchRun, run.id)
    assert (done.status, done.worker) == (RunStatus.SUCCEEDED, "w:1")
    assert db.session.scalar(select(func.count()).select_from(Analysis)) == 1


def test_with_a_broker_the_scheduler_only_claims_and_enqueues_each_id_once(app, owner):
    run = claimed_run(owner)
    record = queued(owner)
    scheduler = WatchScheduler(app, clock=StepClock(), say=[].append)
    sent: list[tuple[str, int]] = []
    failures = [1]

    def enqueue_run(run_id: int) -> None:
        if failures:  # the broker is down once: the run stays QUEUED and goes out on the next tick
            failures.pop()
            raise ConnectionError("broker down")
        sent.append(("run", run_id))

    # What `bind` wires with STEADYHAND_BROKER_URL set: the Celery tasks' enqueue functions.
    scheduler._enqueue_run = enqueue_run
    scheduler._enqueue_backtest = lambda backtest_id: sent.append(("backtest", backtest_id))
    try:
        assert scheduler.tick().backtests == [record.id]
        scheduler.tick()
        scheduler.tick()
        # The watch's run is still queued, so no later bar of it is claimed; the failed enqueue went out on a later
        # pass, once.
        runs = db.session.scalars(select(WatchRun.id).order_by(WatchRun.id)).all()
        assert runs == [run.id] and not failures
        assert sorted(sent) == sorted([("backtest", record.id), *(("run", run_id) for run_id in runs)])  # each once
        db.session.expire_all()
        assert {db.session.get(WatchRun, run_id).status for run_id in runs} == {RunStatus.QUEUED}  # none ran here
        assert fresh(record.id).status is BacktestStatus.QUEUED
        assert scheduler.running == {} and scheduler._backtest is None
    finally:
        stop(scheduler)
