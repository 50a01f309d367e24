"""REST API list latency beside its peer: `GET /api/v1/analyses?limit=50` against `GET /healthz`, one gunicorn server.

Run: .venv/bin/python benchmarks/api_latency.py [--analyses 10000] [--workers 2] [--concurrency 4] [--requests 2000]
     [--path /api/v1/analyses?limit=50] [--database sqlite|postgresql]
     [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
Prints one table (p50, p90, p99, max latency and requests per second of each endpoint) and the p99 ratio beside the
goal of issue 11 (the list's p99 within 3x of /healthz's); nothing here is a test. Needs PostgreSQL for
`--database postgresql`. Exits 1 when any response was not 200 (at the first failed list request, printing its body).

Setup, on a fresh database (a SQLite file, or a PostgreSQL schema dropped afterwards), migrated: one user with a paper
account and `--analyses` analyses (BTC/USDT and ETH/USDT 1h, one a minute, mostly OK, the rest FAILED or INVALID, each
with a signal), a second user with 500 of their own (which the first user's list must skip), and a `read` API key
for the first user. Then gunicorn as the Procfile starts it (`--preload --no-control-socket wsgi:app`, sync workers,
`--workers`, no access log), in a clean production environment, with a per-key rate limit no run reaches.

The load generator is this process: `--concurrency` threads, each with its own `http.client` connection (the sync
workers close it after each response, so every request includes a new TCP connection, for both endpoints alike),
alternating the two endpoints, so both see the same machine state and the same server queue. 50 requests of each
come first and are not counted; then `--requests` of each are timed, from sending to the last byte of the body.
"""

import argparse
import http.client
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARMUP = 50
GOAL = 3.0
OTHER_USER_ANALYSES = 500
STATUS_CYCLE = ["ok"] * 18 + ["failed", "invalid"]  # 90% OK
SIGNAL = {"entry_price": None, "stop_loss": None, "take_profit": None, "horizon_bars": 6}
SIGNAL |= {"reasoning": "Trend and momentum on the last bars.", "key_factors": ["RSI 48", "SMA 20 above SMA 50"]}


def populate(environ: dict[str, str], count: int) -> str:
    """Migrate the database of `environ`, add both users and their analyses; the first user's read key."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from ai.outcome import AnalysisStatus
    from app import create_app
    from app.extensions import db, db_session
    from app.models import Account, AccountKind, Analysis, User
    from app.services.api_keys import issue_key

    app = create_app(environ=environ)
    with app.app_context():
        upgrade()
        session = db_session()
        start = datetime(2024, 1, 1, tzinfo=UTC)
        user_ids = []
        for email, rows in (("bench@example.com", count), ("other@example.com", OTHER_USER_ANALYSES)):
            user = User(email=email, display_name=email.split("@")[0], password_hash="!")  # noqa: S106 (no sign-in)
            session.add(user)
            session.flush()
            money = {"starting_balance": 100, "current_balance": 100, "peak_equity": 100}
            account = Account(user_id=user.id, name="Paper", kind=AccountKind.PAPER, exchange_id="binance", **money)
            session.add(account)
            session.flush()
            user_ids.append(user.id)
            batch = []
            for n in range(rows):
                status = AnalysisStatus(STATUS_CYCLE[n % len(STATUS_CYCLE)])
                action = ("BUY", "HOLD", "SELL", "HOLD")[n % 4] if status is AnalysisStatus.OK else "HOLD"
                batch.append(
                    {
                        "user_id": user.id,
                        "account_id": account.id,
                        "exchange_id": "binance",
                        "symbol": ("BTC/USDT", "ETH/USDT")[n % 2],
                        "timeframe": "1h",
                        "bar_time": start + timedelta(hours=n // 2),
                        "signal_source": "deepseek" if n % 3 else "rules:sma_cross",
                        "provider": "deepseek" if n % 3 else "rules",
                        "model": "deepseek-chat" if n % 3 else "sma_cross",
                        "status": status,
                        "error_code": None if status is AnalysisStatus.OK else "PROVIDER_ERROR",
                        "input_tokens": 1200 if n % 3 else 0,
                        "output_tokens": 80 if n % 3 else 0,
                        "cost_usd": "0.00041" if n % 3 else "0",
                        "latency_ms": 900 + n % 400,
                        "signal": {**SIGNAL, "action": action, "confidence": 40 + n % 50},
                        "created_at": start + timedelta(minutes=n),
                    }
                )
            for first in range(0, len(batch), 2000):
                session.execute(insert(Analysis), batch[first : first + 2000])
        token = issue_key(session, user_ids[0], "benchmark", ["read"], datetime.now(UTC)).token
        session.commit()
        db.session.remove()
        db.engine.dispose()
    return token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(environ: dict[str, str], workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Gunicorn as the Procfile runs it; returns once /healthz answers 200 (exits if it does not within 60 s)."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "--no-control-socket", "--preload", "-w", str(workers), "-b", f"127.0.0.1:{port}", "wsgi:app"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            ready = connection.getresponse().status == 200
            connection.close()
            if ready:
                return server
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    server.terminate()
    server.wait(timeout=30)
    sys.exit(f"gunicorn did not answer /healthz within 60 s: {log.read_text()[-2000:]}")


def load(
    port: int, paths: dict[str, str], headers: dict[str, dict[str, str]], per_endpoint: int, concurrency: int
) -> tuple:
    """`per_endpoint` requests of each path (with `headers[path]`, if any) from `concurrency` threads, alternating;
    latencies in ms per endpoint, non-200 counts per endpoint, the first failed body, and the wall seconds."""
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    failures = dict.fromkeys(paths, 0)
    first_failure: list[str] = []
    stop = threading.Event()

    def worker(share: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(share):
            for name, path in paths.items():
                if stop.is_set():
                    return
                started = time.perf_counter()
                connection.request("GET", path, headers=headers.get(path, {}))
                response = connection.getresponse()
                body = response.read()
                latencies[name].append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    failures[name] += 1
                    if path != "/healthz" and not first_failure:
                        first_failure.append(f"{response.status} {body.decode(errors='replace')[:2000]}")
                        stop.set()
        connection.close()

    shares = [per_endpoint // concurrency + (i < per_endpoint % concurrency) for i in range(concurrency)]
    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures, first_failure, time.perf_counter() - started


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def server_environ(instance: Path, database_url: str, **extra: str) -> dict[str, str]:
    """A benchmark server's environment: production mode (as the Procfile runs it) with fresh secrets, its own
    instance folder and database, quiet logs, plus `extra` settings."""
    from cryptography.fernet import Fernet

    return {
        **{key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TZ") if key in os.environ},
        "STEADYHAND_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "STEADYHAND_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "STEADYHAND_INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def main() -> None:
    from benchmarks.celery_throughput import DEFAULT_POSTGRES_URL, Database

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyses", type=int, default=10_000, help="the benchmark user's analyses")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--concurrency", type=int, default=4, help="load generator threads")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per endpoint")
    parser.add_argument("--path", default="/api/v1/analyses?limit=50", help="the API request measured")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="with --database postgresql")
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="steadyhand-api-bench-"))
    database = Database(args.database, instance, args.postgres_url)
    server = None
    try:
        environ = server_environ(instance, database.url, STEADYHAND_API_RATE_LIMIT="1000000 per minute")
        started = time.perf_counter()
        token = populate(environ, args.analyses)
        print(f"populated {args.analyses:,} + {OTHER_USER_ANALYSES} analyses in {time.perf_counter() - started:.1f} s")
        port = free_port()
        server = start_server(environ, args.workers, port, instance / "gunicorn.log")
        paths = {"/healthz": "/healthz", args.path: args.path}
        headers = {args.path: {"Authorization": f"Bearer {token}"}}
        load_before = os.getloadavg()
        warm_failure = load(port, paths, headers, WARMUP, args.concurrency)[2]
        if warm_failure:
            sys.exit(f"FAILED: {args.path} answered {warm_failure[0]}")
        latencies, failures, first_failure, seconds = load(port, paths, headers, args.requests, args.concurrency)
        load_after = os.getloadavg()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        database.drop()

    if first_failure:
        sys.exit(f"FAILED: {args.path} answered {first_failure[0]}")
    print(
        f"\n{args.database}; {args.analyses:,} analyses; gunicorn {args.workers} sync workers; "
        f"{args.concurrency} client threads, {args.requests:,} timed requests per endpoint, interleaved"
    )
    print(
        f"{'endpoint':<30}{'requests':>9}{'non-200':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>8}"
    )
    p99 = {}
    for name, values in latencies.items():
        ordered = sorted(values)
        p99[name] = percentile(ordered, 0.99)
        print(
            f"{name:<30}{len(ordered):>9,}{failures[name]:>9}{percentile(ordered, 0.5):>9.1f}"
            f"{percentile(ordered, 0.9):>9.1f}{p99[name]:>9.1f}{ordered[-1]:>9.1f}{len(ordered) / seconds:>8.0f}"
        )
    ratio = p99[args.path] / p99["/healthz"]
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"p99 ratio {args.path} / /healthz: {ratio:.2f}x (goal: within {GOAL:g}x: {verdict})")
    print(
        f"(load average at start {load_before[0]:.2f}, at end {load_after[0]:.2f}; {os.cpu_count()} cores; "
        f"{seconds:.1f} s timed)"
    )
    if any(failures.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
