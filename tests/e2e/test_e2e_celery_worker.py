"""A real `celery worker` (solo pool, concurrency 1) against the real Redis on 127.0.0.1:6379 and a temporary SQLite
file database: the scheduler, with STEADYHAND_BROKER_URL set, only claims and enqueues; the worker executes the
queued watch run and the queued backtest, fails a backtest whose worker died when it starts, and a run delivered
twice executes once; a worker killed with SIGKILL mid-run (its order held by a fake Binance) leaves one order, which
the leader settles as it fails the run. A unique queue per test run keeps concurrent runs apart. Skipped only when
Redis is unreachable and STEADYHAND_REQUIRE_REDIS is not set."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import kombu.pools
import pytest
import redis
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.jobs import celery_app, tasks
from app.jobs.scheduler import WatchScheduler
from app.models import Analysis, Backtest, BacktestStatus, Order, Position, PositionStatus, RunStatus, WatchRun
from app.services import backtests, watch_runs
from app.services.backtests import BacktestRequest
from app.services.watch_runs import DueRun
from exchanges.orders import OrderStatus
from exchanges.timeframes import last_closed_bar_open
from tests import factories
from tests.conftest import PROJECT_ROOT, clean_environ
from tests.e2e.test_e2e_exactly_once_binance import (
    API_KEY,
    SECRET,
    exchange_orders,
    fake_binance,  # noqa: F401 (a fixture)
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)  # rules:rsi_reversion BUYs BTC/USDT here
DEADLINE_SECONDS = 120.0


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = f"Redis not reachable at {REDIS_URL} ({error})"
        if os.environ.get("STEADYHAND_REQUIRE_REDIS"):
            pytest.fail(f"STEADYHAND_REQUIRE_REDIS is set but {reason}")
        pytest.skip(reason)
    return client


def poll(what: str, check: Callable[[], bool], log: Path) -> None:
    """Wait for `check()` with a deadline (no fixed sleeps); on timeout, show the worker's log."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        db.session.expire_all()
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text(errors='replace')[-6000:]}")


@pytest.fixture
def broker() -> Iterator[str]:
    client = _redis_or_skip()
    queue = f"steadyhand-test-{uuid.uuid4().hex[:12]}"
    yield queue
    client.delete(queue, f"_kombu.binding.{queue}", *(f"{queue}\x06\x16{n}" for n in range(10)))
    client.close()


@pytest.fixture
def worker_app(tmp_path: Path, broker: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flask, dict[str, str]]]:
    environ = clean_environ(
        tmp_path,
        f"sqlite:///{tmp_path / 'steadyhand.db'}",
        STEADYHAND_BROKER_URL=REDIS_URL,
        STEADYHAND_MARKET="store",
        LOG_FORMAT="text",
    )
    app = create_app(environ=environ)
    with app.app_context():
        upgrade()
    # This process sends on the test's own queue; restored afterwards for the other tests of this process.
    monkeypatch.setattr(celery_app, "_app", None)
    monkeypatch.setattr(celery_app, "_queue", celery_app.QUEUE)
    previous_broker = celery_app.celery.conf.broker_url
    celery_app.bind(app, broker)
    try:
        with app.app_context():
            yield app, environ
            db.session.remove()
            db.engine.dispose()
    finally:
        celery_app.celery.conf.broker_url = previous_broker
        celery_app.celery.pool.force_close_all()
        # A closed pool refuses to hand out connections, and kombu keeps its pools per broker URL for the whole
        # process: the next test starts with fresh ones, as Celery itself does after a fork.
        kombu.pools.reset()
        celery_app.celery._pool = None
        celery_app.celery.amqp._producer_pool = None


def start_worker(environ: dict[str, str], queue: str, log: Path) -> subprocess.Popen[bytes]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STEADYHAND_", "DATABASE_URL", "SECRET_KEY", "REDIS_URL", "LOG_"))
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "app.jobs.celery_app",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--queues",
        queue,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=PROJECT_ROOT, env={**inherited, **environ}, stdout=out, stderr=subprocess.STDOUT
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def test_a_celery_worker_runs_what_the_scheduler_enqueues_and_a_run_delivered_twice_runs_once(worker_app, broker):
    app, environ = worker_app
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion")
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    request = BacktestRequest(user_id=user.id, symbol="BTC/USDT", timeframe="1h", signals="rules:sma_cross")
    dead = backtests.create_backtest(db.session, app.extensions["steadyhand.settings"], request)
    dead.status, dead.worker = BacktestStatus.RUNNING, "killed:1"
    dead.started_at = dead.heartbeat_at = datetime.now(UTC) - timedelta(hours=1)
    queued = backtests.create_backtest(db.session, app.extensions["steadyhand.settings"], request)
    db.session.commit()
    dead_id, queued_id = dead.id, queued.id

    log = Path(environ["STEADYHAND_INSTANCE_PATH"]) / "worker.log"
    worker = start_worker(environ, broker, log)
    try:
        # The worker's start fails the backtest whose worker died (and tells us it is up).
        poll(
            "the worker to fail the dead backtest",
            lambda: db.session.get(Backtest, dead_id).status is BacktestStatus.FAILED,
            log,
        )
        assert db.session.get(Backtest, dead_id).error_message.startswith(
            "the worker running it stopped (last heartbeat "
        )

        # The scheduler with a broker claims the due run and enqueues it with the queued backtest; it runs nothing.
        scheduler = WatchScheduler(app, market_clock=lambda: BUY_BAR + timedelta(hours=1, seconds=10), say=[].append)
        try:
            report = scheduler.tick()
            assert report.leading and len(report.claimed) == 1 and report.backtests == [queued_id]
            assert scheduler.running == {}
        finally:
            scheduler.wait_idle(timeout=30)
            scheduler.pool.shutdown(wait=True)
            scheduler.notify_pool.shutdown(wait=True)
            scheduler.backtest_pool.shutdown(wait=True)
            scheduler.leadership.release()
        [run_id] = report.claimed
        tasks.enqueue_watch_run(run_id)  # the same run delivered a second time, right behind the first

        poll("the run to succeed", lambda: db.session.get(WatchRun, run_id).status is RunStatus.SUCCEEDED, log)
        poll(
            "the backtest to succeed",
            lambda: db.session.get(Backtest, queued_id).status is BacktestStatus.SUCCEEDED,
            log,
        )
        first = db.session.get(WatchRun, run_id)
        first_finished, first_worker = first.finished_at, first.worker
        assert first_worker != scheduler.worker and first.analysis_id is not None
        backtest = db.session.get(Backtest, queued_id)
        assert (backtest.progress, backtest.worker == first_worker) == (1.0, True)

        # Delivered a third time, then a new run behind it: the solo worker takes them in order, so once the new
        # run is done the duplicate was handled, and it changed nothing.
        tasks.enqueue_watch_run(run_id)
        later = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR + timedelta(hours=1), "schedule"), BUY_BAR)
        assert later is not None
        later_id = later.id
        tasks.enqueue_watch_run(later_id)
        poll("the later run to finish", lambda: db.session.get(WatchRun, later_id).finished_at is not None, log)
        again = db.session.get(WatchRun, run_id)
        assert (again.status, again.finished_at, again.worker) == (RunStatus.SUCCEEDED, first_finished, first_worker)
        assert db.session.scalar(select(func.count()).select_from(Analysis)) == 2  # one per run, not per delivery
        assert log.read_text(errors="replace").count(f"watch run #{run_id} skipped") == 2
    finally:
        stop_worker(worker)


def test_a_worker_killed_mid_run_leaves_one_order_a_failed_run_and_a_reconciled_account(
    worker_app,
    broker,
    fake_binance,  # noqa: F811
):
    app, environ = worker_app
    base_url, control = fake_binance
    user = factories.user(db.session)
    live = factories.live_account(
        db.session, user, label="fake", api_key=API_KEY, api_secret=SECRET, exchange_base_url=base_url
    )
    watch = factories.watch(db.session, user, live, signal_source="rules:rsi_reversion", auto_execute=True)
    db.session.commit()
    # The fake's klines make the latest closed hour the bar where rsi_reversion buys.
    bar = last_closed_bar_open("1h", datetime.now(UTC))
    run = watch_runs.claim(db.session, DueRun(watch.id, bar, "schedule"), datetime.now(UTC), "scheduler")
    assert run is not None
    run_id = run.id

    log = Path(environ["STEADYHAND_INSTANCE_PATH"]) / "worker.log"
    worker = start_worker(environ, broker, log)
    try:
        tasks.enqueue_watch_run(run_id)
        poll("the run's order reaching Binance", lambda: (control / "order-held").exists(), log)
        worker.kill()  # SIGKILL, with the order accepted by the exchange and its fill not recorded
        worker.wait(timeout=30)
    finally:
        stop_worker(worker)
    killed = db.session.get(WatchRun, run_id)
    assert killed.status is RunStatus.RUNNING and killed.worker.endswith(f":{worker.pid}")

    lines: list[str] = []
    scheduler = WatchScheduler(app, say=lines.append)  # the leader, on the wall clock like the worker
    try:
        report = scheduler.tick()
        scheduler.wait_idle(timeout=60)
    finally:
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        scheduler.backtest_pool.shutdown(wait=True)
        scheduler.leadership.release()
    assert (report.interrupted, report.reconciling, report.claimed) == ([run_id], [live.id], [])
    db.session.expire_all()
    failed = db.session.get(WatchRun, run_id)
    assert (failed.status, failed.error_code) == (RunStatus.FAILED, "INTERRUPTED")
    [on_exchange] = exchange_orders(base_url)
    order = db.session.scalars(select(Order).where(Order.account_id == live.id)).one()
    assert (order.client_order_id, order.status) == (on_exchange["clientOrderId"], OrderStatus.CLOSED)
    position = db.session.scalars(select(Position).where(Position.account_id == live.id)).one()
    assert (position.status, position.quantity) == (PositionStatus.OPEN, Decimal("0.00083916"))
    assert any(
        line.startswith(f"reconcile account #{live.id}: order {order.client_order_id}: pending") for line in lines
    )
