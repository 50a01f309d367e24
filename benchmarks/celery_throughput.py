"""Watch runs per second through Celery (two workers) beside the scheduler's own thread pool, in the same run.

Run: .venv/bin/python benchmarks/celery_throughput.py [--runs 1000] [--broker redis://127.0.0.1:6379/0]
     [--pool-sizes 2,4] [--database-url postgresql://...]
Prints one table; nothing here is a test. Needs the broker (Redis by default) running.

Ten users, each with a paper account and a `rules:sma_cross` watch of BTC/USDT 1h on the store market (the bundled
2024 candles; no provider, so what is measured is the run's own work: claim, candles, context, signal, risk
decision, recording). For each contender a fresh batch of `--runs` runs is claimed (QUEUED, distinct bars), then
one scheduler tick hands them out and the clock stops when none is QUEUED or RUNNING:
  - celery: the scheduler with STEADYHAND_BROKER_URL enqueues `run_watch(run_id)` for each; two
    `celery -A app.jobs.celery_app worker --pool solo` processes (one run at a time each) execute them;
  - pool N (the peer): the scheduler without a broker executes them in its own thread pool of N threads.
The database is a temporary SQLite file unless --database-url is given (both contenders share it).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LATEST_BAR = datetime(2024, 6, 1, tzinfo=UTC)
WATCHES = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pool-sizes", default="2,4")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    pool_sizes = [int(size) for size in args.pool_sizes.split(",") if size]
    per_watch = -(-args.runs // WATCHES)
    instance = Path(tempfile.mkdtemp(prefix="steadyhand-celery-bench-"))
    database_url = args.database_url or f"sqlite:///{instance / 'bench.db'}"
    base = {
        "STEADYHAND_INSTANCE_PATH": str(instance),
        "STEADYHAND_ENV": "test",
        "STEADYHAND_MARKET": "store",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
    }
    queue = f"steadyhand-bench-{uuid.uuid4().hex[:8]}"

    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from app import SETTINGS_EXTENSION, create_app
    from app.extensions import db, db_session
    from app.jobs import celery_app
    from app.jobs.scheduler import WatchScheduler
    from app.models import Account, AccountKind, RunStatus, User, Watch, WatchRun
    from app.services import markets, watch_runs
    from app.services.watch_runs import DueRun

    app = create_app(environ=base)
    settings = app.extensions[SETTINGS_EXTENSION]
    with app.app_context():
        upgrade()
        session = db_session()
        markets.import_candle_file(
            session,
            settings,
            markets.CandleFileImport(
                ROOT / "data/candles/binance_BTCUSDT_1h_2024-01_2024-09.csv", "binance", "BTC/USDT", "1h"
            ),
        )
        for i in range(WATCHES):
            user = User(email=f"bench{i}@example.com", display_name=f"Bench {i}")
            user.set_password("bench-password-0123")
            session.add(user)
            session.flush()
            account = Account(
                user_id=user.id,
                name="Paper",
                kind=AccountKind.PAPER,
                exchange_id="binance",
                starting_balance=100 + i,
                current_balance=100 + i,
                peak_equity=100 + i,
            )
            session.add(account)
            session.flush()
            session.add(
                Watch(
                    user_id=user.id,
                    account_id=account.id,
                    exchange_id="binance",
                    symbol="BTC/USDT",
                    timeframe="1h",
                    cadence_minutes=60,
                    signal_source="rules:sma_cross",
                )
            )
        session.commit()
        watch_ids = list(session.scalars(select(Watch.id).order_by(Watch.id)))
        db.session.remove()

    contenders = ["celery", *(f"pool {size}" for size in pool_sizes)]
    # Each contender gets its own bars, oldest batch first, so claiming never makes an older batch due again.
    batches = {name: len(contenders) - 1 - index for index, name in enumerate(contenders)}

    def claim_batch(name: str) -> tuple[list[int], datetime]:
        newest = LATEST_BAR - timedelta(hours=batches[name] * per_watch)
        ids = []
        with app.app_context():
            session = db_session()
            for offset in reversed(range(per_watch)):
                for watch_id in watch_ids:
                    if len(ids) == args.runs:
                        break
                    run = watch_runs.claim(
                        session, DueRun(watch_id, newest - timedelta(hours=offset), "schedule"), LATEST_BAR
                    )
                    assert run is not None
                    ids.append(run.id)
            db.session.remove()
        return ids, newest + timedelta(hours=1, seconds=10)  # a market time at which nothing new is due

    def unfinished(run_ids: list[int]) -> int:
        with app.app_context():
            try:
                query = select(func.count()).where(
                    WatchRun.id.in_(run_ids), WatchRun.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])
                )
                return int(db_session().scalar(query) or 0)
            finally:
                db.session.remove()

    def outcomes(run_ids: list[int]) -> str:
        with app.app_context():
            try:
                query = select(WatchRun.status, func.count()).where(WatchRun.id.in_(run_ids)).group_by(WatchRun.status)
                return ", ".join(f"{status.value} {count}" for status, count in db_session().execute(query))
            finally:
                db.session.remove()

    results: list[tuple[str, int, float, str]] = []

    # Celery: two worker processes, then one tick enqueues the batch.
    worker_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STEADYHAND_", "DATABASE_URL", "LOG_"))},
        **base,
        "STEADYHAND_BROKER_URL": args.broker,
    }
    logs = [instance / f"worker-{n}.log" for n in range(args.workers)]
    celery_bin = str(Path(sys.executable).with_name("celery"))
    workers = []
    for n, log in enumerate(logs):
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    [
                        celery_bin,
                        *("-A", "app.jobs.celery_app", "worker", "--pool", "solo", "--queues", queue),
                        *("--hostname", f"bench{n}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"),
                        *("--loglevel", "WARNING"),
                    ],
                    cwd=ROOT,
                    env=worker_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        broker_app = create_app(environ={**base, "STEADYHAND_BROKER_URL": args.broker})
        celery_app.bind(broker_app, queue)
        with celery_app.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
        # Ready when each worker answers a ping on the control channel.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = celery_app.celery.control.ping(timeout=0.5) or []
            if len(replies) >= args.workers:
                break
        else:
            sys.exit("the Celery workers did not start: " + " | ".join(log.read_text()[-500:] for log in logs))
        run_ids, market_now = claim_batch("celery")
        scheduler = WatchScheduler(broker_app, market_clock=lambda: market_now, say=lambda _: None)
        started = time.perf_counter()
        report = scheduler.tick()
        assert report.leading and not report.claimed
        while unfinished(run_ids):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        scheduler.leadership.release()
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        scheduler.backtest_pool.shutdown(wait=True)
        results.append((f"celery, {args.workers} workers (solo)", len(run_ids), elapsed, outcomes(run_ids)))
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    # The peer: the scheduler's own pool, without a broker.
    for size in pool_sizes:
        pool_app = create_app(environ={**base, "STEADYHAND_RUN_POOL_SIZE": str(size)})
        run_ids, market_now = claim_batch(f"pool {size}")
        scheduler = WatchScheduler(pool_app, market_clock=lambda at=market_now: at, say=lambda _: None)
        started = time.perf_counter()
        report = scheduler.tick()
        assert report.leading and not report.claimed
        scheduler.wait_idle()
        while unfinished(run_ids):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        scheduler.leadership.release()
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        scheduler.backtest_pool.shutdown(wait=True)
        results.append((f"scheduler pool, {size} threads", len(run_ids), elapsed, outcomes(run_ids)))

    backend = database_url.split(":", 1)[0]
    print(
        f"\n{args.runs:,} watch runs (rules:sma_cross, store market, {backend}, broker {args.broker.split('://')[0]})"
    )
    print(f"{'executor':<34}{'runs':>7}{'seconds':>10}{'runs/s':>9}  outcomes")
    for name, count, elapsed, outcome in results:
        print(f"{name:<34}{count:>7,}{elapsed:>10.1f}{count / elapsed:>9.1f}  {outcome}")


if __name__ == "__main__":
    main()
