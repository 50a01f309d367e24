"""Watch runs per second through Celery (two workers) beside the scheduler's own thread pool, in the same run.

Run: .venv/bin/python benchmarks/celery_throughput.py [--watches 1000] [--broker redis://127.0.0.1:6379/0]
     [--workers 2] [--pool-sizes 16,4] [--executing-accounts 50] [--rounds 1]
     [--database sqlite|postgresql] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
Prints one table; nothing here is a test. Needs the broker (Redis by default) running, and PostgreSQL for
`--database postgresql`. Exits 1, listing the first failed runs, when any run did not succeed.

What is measured: one scheduler tick at the midnight of 2024-08-01 (market time), when every watch is due at once,
claims one run of one bar for each of `--watches` distinct watches, and the clock stops when none of them is QUEUED or
RUNNING. The watches are `rules:STRATEGY` watches on the store market (the bundled 2024 candles; no provider, so what
is measured is the run's own work: claim, candles, context, signal, risk decision, trading step, recording), spread
evenly over BTC/USDT and ETH/USDT, 1h and 1d (the 1h bar of 2024-07-31 23:00 and the 1d bar of 2024-07-31, late
enough for the 1d indicators' warm-up) and the three strategies (sma_cross, ema_rsi_volume, rsi_reversion): each user
has one paper account and up to 12 watches on it (one per series and strategy, the most a user can have). The
watches of the first `--executing-accounts` accounts auto-execute, so their runs take the account's trading lock
(`app.services.account_lock`) one after another and may place paper orders; the others' runs give advice only.

Contenders, each on a fresh database of its own (identical watches, accounts and candles; a SQLite file, or a
PostgreSQL schema dropped afterwards), `--rounds` times (every other round in reverse order):
  - celery: the scheduler with STEADYHAND_BROKER_URL claims and enqueues `run_watch(run_id)` for each; `--workers`
    `celery -A app.jobs.celery_app worker --pool solo` processes (one run at a time each) execute them;
  - pool N (the peers): the scheduler without a broker claims and executes them in its own pool of N threads
    (16 is the default STEADYHAND_RUN_POOL_SIZE).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Just past midnight (and past the scheduler's settle time): the 1h bar of 23:00 and the 1d bar of 2024-07-31 are due.
TICK_NOW = datetime(2024, 8, 1, 0, 0, 30, tzinfo=UTC)
SERIES = [("BTC/USDT", "1h"), ("ETH/USDT", "1h"), ("BTC/USDT", "1d"), ("ETH/USDT", "1d")]
STRATEGIES = ["sma_cross", "ema_rsi_volume", "rsi_reversion"]
PER_USER = len(SERIES) * len(STRATEGIES)  # the unique (user, exchange, symbol, timeframe, source) key allows no more
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Outcome:
    name: str
    runs: int
    seconds: float
    statuses: str
    orders: int
    failures: list[str]
    tick_seconds: float  # the tick itself: due runs, one claim (an INSERT and a commit) per watch, hand-out
    step_ms: dict[str, float]  # mean ms per run step, from the runs' step logs


class Database:
    """A fresh, empty database: a SQLite file in `directory`, or a PostgreSQL schema of its own (see `drop`)."""

    def __init__(self, backend: str, directory: Path, postgres_url: str) -> None:
        self.schema: str | None = None
        if backend == "sqlite":
            self.url = f"sqlite:///{directory / f'bench-{uuid.uuid4().hex[:8]}.db'}"
            return
        import psycopg
        from sqlalchemy import make_url

        self.schema = f"sh_bench_{uuid.uuid4().hex[:12]}"
        self._libpq_url = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(self._libpq_url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{self.schema}"')
        self.url = (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={self.schema}"})
            .render_as_string(hide_password=False)
        )

    def drop(self) -> None:
        if self.schema is None:
            Path(self.url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            return
        import psycopg

        with psycopg.connect(self._libpq_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def populate(environ: dict[str, str], watches: int, executing_accounts: int) -> None:
    """Migrate the database of `environ`, import the four bundled 2024 series, and add the users, accounts and
    watches."""
    from flask_migrate import upgrade

    from app import SETTINGS_EXTENSION, create_app
    from app.extensions import db, db_session
    from app.models import Account, AccountKind, User, Watch
    from app.services import markets

    app = create_app(environ=environ)
    settings = app.extensions[SETTINGS_EXTENSION]
    with app.app_context():
        upgrade()
        session = db_session()
        for symbol, timeframe in SERIES:
            path = ROOT / f"data/candles/binance_{symbol.replace('/', '')}_{timeframe}_2024-01_2024-09.csv"
            markets.import_candle_file(session, settings, markets.CandleFileImport(path, "binance", symbol, timeframe))
        hashed = User(email="bench@example.com")
        hashed.set_password("bench-password-0123")  # hashed once: a hundred users, none of whom logs in
        for u in range(-(-watches // PER_USER)):
            user = User(email=f"bench{u}@example.com", display_name=f"Bench {u}")
            user.password_hash = hashed.password_hash
            session.add(user)
            session.flush()
            balance = 1000 + u
            account = Account(
                user_id=user.id,
                name="Paper",
                kind=AccountKind.PAPER,
                exchange_id="binance",
                starting_balance=balance,
                current_balance=balance,
                peak_equity=balance,
            )
            session.add(account)
            session.flush()
            for w in range(min(PER_USER, watches - u * PER_USER)):
                # Series vary fastest, so every user's watches (and a partial last user's) cover all four evenly.
                symbol, timeframe = SERIES[w % len(SERIES)]
                session.add(
                    Watch(
                        user_id=user.id,
                        account_id=account.id,
                        exchange_id="binance",
                        symbol=symbol,
                        timeframe=timeframe,
                        cadence_minutes=60 if timeframe == "1h" else 1440,
                        signal_source=f"rules:{STRATEGIES[w // len(SERIES)]}",
                        auto_execute=u < executing_accounts,
                    )
                )
        session.commit()
        db.session.remove()
        db.engine.dispose()


def measure(name: str, app: Any, pool: bool) -> Outcome:
    """One scheduler tick of `app` at TICK_NOW, then wait until none of the runs it claimed is QUEUED or RUNNING."""
    from sqlalchemy import func, select

    from app.extensions import db, db_session
    from app.jobs.scheduler import WatchScheduler
    from app.models import Order, RunStatus, WatchRun
    from app.services import analysis_inputs

    analysis_inputs.shared_inputs.clear()  # the pool computes each series' indicators afresh, as a worker does
    scheduler = WatchScheduler(app, market_clock=lambda: TICK_NOW, say=lambda _: None)

    def unfinished(run_ids: list[int]) -> int:
        with app.app_context():
            try:
                query = select(func.count()).where(
                    WatchRun.id.in_(run_ids), WatchRun.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])
                )
                return int(db_session().scalar(query) or 0)
            finally:
                db.session.remove()

    try:
        started = time.perf_counter()
        report = scheduler.tick()
        tick_seconds = time.perf_counter() - started
        assert report.leading, "the scheduler did not lead"
        if pool:
            scheduler.wait_idle()
        while unfinished(report.claimed):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        scheduler.backtest_pool.shutdown(wait=True)
        with app.app_context():
            scheduler.leadership.release()
            db.session.remove()
    with app.app_context():
        try:
            session = db_session()
            query = select(WatchRun.status, func.count()).where(WatchRun.id.in_(report.claimed))
            statuses = ", ".join(
                f"{status.value} {count}" for status, count in session.execute(query.group_by(WatchRun.status))
            )
            orders = int(session.scalar(select(func.count()).select_from(Order)) or 0)
            runs = session.scalars(select(WatchRun).where(WatchRun.id.in_(report.claimed)).order_by(WatchRun.id)).all()
            failed = [run for run in runs if run.status is not RunStatus.SUCCEEDED]
            step_ms: dict[str, list[float]] = {}
            for run in runs:
                if run.started_at is not None and run.finished_at is not None:
                    run_ms = (run.finished_at - run.started_at).total_seconds() * 1000
                    step_ms.setdefault("whole run", []).append(run_ms)
                for step in run.steps or []:
                    step_ms.setdefault(step["step"], []).append(float(step.get("ms") or 0))
            failures = [
                f"run #{run.id} (watch #{run.watch_id}, bar {run.bar_time:%Y-%m-%d %H:%M}): {run.status.value} at "
                f"{run.failed_step}: {run.error_code}: {run.error_message}"
                for run in failed
            ]
        finally:
            db.session.remove()
            db.engine.dispose()
    # Notes (e.g. signal_status) sit in the step log with 0 ms: only timed steps are averaged.
    means = {step: sum(values) / len(values) for step, values in step_ms.items() if any(values)}
    return Outcome(name, len(report.claimed), elapsed, statuses, orders, failures, tick_seconds, means)


def run_celery(name: str, base: dict[str, str], broker: str, workers: int, instance: Path) -> Outcome:
    """Start `workers` solo Celery workers on a queue of their own, and measure one tick that enqueues to them."""
    from app import create_app
    from app.jobs import celery_app

    queue = f"steadyhand-bench-{uuid.uuid4().hex[:8]}"
    worker_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STEADYHAND_", "DATABASE_URL", "LOG_"))},
        **base,
        "STEADYHAND_BROKER_URL": broker,
    }
    logs = [instance / f"worker-{queue}-{n}.log" for n in range(workers)]
    celery_bin = str(Path(sys.executable).with_name("celery"))
    processes = []
    for n, log in enumerate(logs):
        with log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        celery_bin,
                        *("-A", "app.jobs.celery_app", "worker", "--pool", "solo", "--queues", queue),
                        *("--hostname", f"bench{n}-{queue}@%h"),
                        *("--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"),
                    ],
                    cwd=ROOT,
                    env=worker_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        broker_app = create_app(environ={**base, "STEADYHAND_BROKER_URL": broker})
        celery_app.bind(broker_app, queue)
        with celery_app.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
        # Ready when each worker answers a ping on the control channel.
        names = {f"bench{n}-{queue}" for n in range(workers)}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = celery_app.celery.control.ping(timeout=0.5) or []
            if names <= {host.partition("@")[0] for reply in replies for host in reply}:
                break
        else:
            sys.exit("the Celery workers did not start: " + " | ".join(log.read_text()[-500:] for log in logs))
        return measure(name, broker_app, pool=False)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-sizes", default="16,4", help="the scheduler pools to compare, comma-separated")
    parser.add_argument("--executing-accounts", type=int, default=50, help="accounts whose watches auto-execute")
    parser.add_argument("--rounds", type=int, default=1, help="measure every contender this many times")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="with --database postgresql")
    args = parser.parse_args()
    pool_sizes = [int(size) for size in args.pool_sizes.split(",") if size]
    instance = Path(tempfile.mkdtemp(prefix="steadyhand-celery-bench-"))
    base = {
        "STEADYHAND_INSTANCE_PATH": str(instance),
        "STEADYHAND_ENV": "test",
        "STEADYHAND_MARKET": "store",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
    }
    from app import create_app

    users = -(-args.watches // PER_USER)
    executing = min(args.executing_accounts, users)
    executing_watches = min(args.watches, executing * PER_USER)
    contenders = [f"celery, {args.workers} workers (solo)", *(f"scheduler pool, {size} threads" for size in pool_sizes)]
    results: list[Outcome] = []
    for round_ in range(args.rounds):
        # Every other round runs the contenders in reverse, so a burst of load elsewhere hits no one contender alone.
        order = list(enumerate(contenders))
        for index, name in order[::-1] if round_ % 2 else order:
            database = Database(args.database, instance, args.postgres_url)
            try:
                environ = {**base, "DATABASE_URL": database.url}
                populate(environ, args.watches, args.executing_accounts)
                if index == 0:
                    results.append(run_celery(name, environ, args.broker, args.workers, instance))
                else:
                    size = pool_sizes[index - 1]
                    pool_app = create_app(environ={**environ, "STEADYHAND_RUN_POOL_SIZE": str(size)})
                    results.append(measure(name, pool_app, pool=True))
            finally:
                database.drop()

    load = os.getloadavg()
    print(
        f"\n{args.watches:,} watches, one run each (rules:sma_cross|ema_rsi_volume|rsi_reversion on BTC/USDT, ETH/USDT "
        f"1h and 1d; {users} paper accounts, {executing} auto-executing: {executing_watches} runs take the account "
        f"lock), store market, {args.database}, broker {args.broker.split('://')[0]}"
    )
    print(f"{'executor':<34}{'runs':>7}{'seconds':>10}{'runs/s':>9}  outcomes")
    for outcome in results:
        print(
            f"{outcome.name:<34}{outcome.runs:>7,}{outcome.seconds:>10.1f}{outcome.runs / outcome.seconds:>9.1f}  "
            f"{outcome.statuses}; orders {outcome.orders}"
        )
    print("the tick's own seconds (claims), and mean ms per run step:")
    for outcome in results:
        steps = ", ".join(f"{step} {ms:.0f}" for step, ms in outcome.step_ms.items())
        print(f"  {outcome.name:<32}tick {outcome.tick_seconds:5.1f} s; {steps}")
    print(f"(load average after the run: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}; {os.cpu_count()} cores)")
    failed = [outcome for outcome in results if outcome.failures or outcome.runs != args.watches]
    for outcome in failed:
        print(
            f"\nFAILED: {outcome.name}: {len(outcome.failures)} of {outcome.runs} runs did not succeed", file=sys.stderr
        )
        for line in outcome.failures[:5]:
            print(f"  {line}", file=sys.stderr)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
