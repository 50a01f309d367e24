"""The scheduler process's tick against the replay market, with a controllable wall clock, on SQLite and
PostgreSQL: one of two schedulers leads, watches run once per closed replay candle, the standby takes over."""

import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.jobs.scheduler import WatchScheduler
from app.models import Analysis, IdempotencyRecord, Order, RunStatus, WatchRun
from app.services import idempotency
from exchanges.orders import OrderStatus
from tests import factories
from tests.services.test_crash_recovery import dead_pid, sent_and_never_recorded

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def schedulers(app, clock, lines):
    return (
        WatchScheduler(app, clock=clock, say=lines.append),
        WatchScheduler(app, clock=clock, say=lines.append),
    )


def test_one_scheduler_leads_and_runs_each_closed_replay_bar_once(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion")
    db.session.commit()
    clock, lines = WallClock(), []
    first, second = schedulers(app, clock, lines)
    try:
        assert lines[0].startswith("market: replay of binance ") and lines[0].endswith(
            "2024-01-16 05:00 -> 2024-09-06 04:00 at 360x: now 2024-01-16 05:00"
        )
        report = first.tick()
        standby = second.tick()
        first.wait_idle(timeout=60)
        assert report.leading and len(report.claimed) == 1
        assert not standby.leading and standby.leader == first.leadership.holder and standby.claimed == []
        run = db.session.get(WatchRun, report.claimed[0])
        # Wall T0 is replay 2024-01-16 05:00: the 04:00 bar closes exactly then and has not settled, so the latest
        # settled bar is 03:00.
        assert (run.watch_id, run.bar_time, run.status) == (
            watch.id,
            datetime(2024, 1, 16, 3, tzinfo=UTC),
            RunStatus.SUCCEEDED,
        )
        analysis = db.session.get(Analysis, run.analysis_id)
        assert analysis.bar_time == run.bar_time

        # The 04:00 bar closed at replay 05:00, wall T0; at 360x its 5 replay seconds of settling take 14 ms of wall.
        clock.now = T0 + timedelta(milliseconds=10)
        assert first.tick().claimed == []
        clock.now = T0 + timedelta(milliseconds=20)
        report = first.tick()
        first.wait_idle(timeout=60)
        [newest] = report.claimed
        assert db.session.get(WatchRun, newest).bar_time == datetime(2024, 1, 16, 4, tzinfo=UTC)
        assert len(db.session.scalars(select(WatchRun)).all()) == 2
    finally:
        for scheduler in (first, second):
            scheduler.wait_idle(timeout=60)
            scheduler.pool.shutdown(wait=True)
            scheduler.notify_pool.shutdown(wait=True)
        first.leadership.release()
        second.leadership.release()


def test_the_standby_takes_over_within_a_lease_once_the_leader_is_gone(app):
    clock, lines = WallClock(), []
    first, second = schedulers(app, clock, lines)
    try:
        assert first.tick().leading and not second.tick().leading
        first.leadership._drop_advisory_lock()  # the leader's process dies; its lease runs out
        clock.now = T0 + timedelta(seconds=29)
        assert not second.tick().leading
        clock.now = T0 + timedelta(seconds=31)
        assert second.tick().leading
        assert any(line.endswith("leading; watches run on every candle close") for line in lines)
        assert any("standing by, scheduler@" in line for line in lines)
    finally:
        for scheduler in (first, second):
            scheduler.wait_idle(timeout=60)
            scheduler.pool.shutdown(wait=True)
            scheduler.notify_pool.shutdown(wait=True)
        second.leadership.release()


def test_a_run_left_running_by_a_killed_scheduler_fails_at_once_and_its_order_is_settled(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion", auto_execute=True)
    dead = f"{socket.gethostname()}:{dead_pid()}"
    # What a scheduler killed mid-run leaves: its run RUNNING (the bar the replay has due at T0) and its order
    # committed PENDING, never filled.
    run = WatchRun(
        watch_id=watch.id,
        bar_time=datetime(2024, 1, 16, 3, tzinfo=UTC),
        trigger="schedule",
        worker=dead,
        status=RunStatus.RUNNING,
        created_at=T0,
        started_at=T0,
        steps=[],
    )
    db.session.add(run)
    db.session.commit()
    sent_and_never_recorded(account)
    clock, lines = WallClock(), []
    scheduler = WatchScheduler(app, clock=clock, say=lines.append)
    try:
        report = scheduler.tick()
        scheduler.wait_idle(timeout=60)
    finally:
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        scheduler.leadership.release()
    assert (report.interrupted, report.reconciling, report.claimed) == ([run.id], [account.id], [])
    db.session.expire_all()
    failed = db.session.get(WatchRun, run.id)
    assert (failed.status, failed.error_code) == (RunStatus.FAILED, "INTERRUPTED")
    assert failed.error_message.startswith(f"its worker {dead} stopped during the run (killed or crashed)")
    order = db.session.scalars(select(Order)).one()
    assert (order.status, order.error_code) == (OrderStatus.REJECTED, "NEVER_REACHED_EXCHANGE")
    assert f"reconcile account #{account.id}: order sh9d9 never reached paper: marked rejected" in lines
    assert f"run(s) #{run.id} failed: their worker stopped mid-run" in lines


def test_the_leader_deletes_api_idempotency_records_past_their_retention(app):
    user = factories.user(db.session)
    for key, age in (("old", idempotency.RETENTION + timedelta(minutes=1)), ("fresh", timedelta(hours=1))):
        claim = idempotency.claim(db.session, user.id, key, "POST", "/api/v1/analyze", "f" * 64, T0 - age)
        idempotency.complete(db.session, claim.record_id, idempotency.StoredResponse(200, "{}", None), T0 - age)
    db.session.commit()
    scheduler = WatchScheduler(app, clock=WallClock(), say=[].append)
    try:
        report = scheduler.tick()
    finally:
        scheduler.pool.shutdown(wait=True)
    assert report.leading and report.idempotency_purged == 1
    db.session.expire_all()
    assert db.session.scalars(select(IdempotencyRecord.key)).all() == ["fresh"]
