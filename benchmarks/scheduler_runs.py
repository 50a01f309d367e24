"""Scheduled runs: the run's own overhead, and one tick of 100 watches against a provider that answers in 1 s.

Run: .venv/bin/python benchmarks/scheduler_runs.py [--watches 100] [--latency 1.0] [--repeats 20] [--pools 4,16,32]
     [--unshared]
Prints two tables; nothing here is a test.

1. Run overhead (goal under 50 ms): a watch run of `rules:sma_cross` (no provider, so no provider latency) through
   `watch_runs.claim` + `execute_run` beside its peer, the same analysis through `run_analysis` alone. The
   difference is what the run adds: claiming the (watch, bar) row, the step log, and recording the outcome.
2. One tick of N watches (goal: 100 done in under 10 s with the default pool): N users, each with a paper account
   and a `deepseek` watch, against a fake DeepSeek on 127.0.0.1 speaking the OpenAI wire format (the real openai
   SDK calls it) that answers each request after `--latency` seconds, on a thread of its own (it serializes
   nothing). The watches are spread over the bundled series (BTC/USDT and ETH/USDT, 1h and 1d) and the tick is the
   midnight one, when both timeframes are due (`--series 1`: all on BTC/USDT 1h). Each pool size runs its own
   tick, on the same bars, with watches and accounts of its own, side by side in one run. The peer is
   the floor the pool allows: ceil(N / pool size) x latency. Each tick prints the mean of each run step (from the
   runs' step logs) and the process CPU time it took (two cores: 2 CPU-s per second at most). `--unshared` adds a
   tick with the default pool as runs were before the inputs were shared: each provider builds its own HTTP client
   (and SSL context) and each run computes its own indicators.

Both run on a temporary SQLite instance with the bundled 2024 candles (the store market, so the bars are fixed:
the 1h bar of 2024-07-31 23:00 and the 1d bar of 2024-07-31, late enough for the 1d indicators' warm-up).
"""

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Section 1's bar, and its market time.
BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)
MARKET_NOW = BAR + timedelta(hours=1, seconds=30)
# Section 2's tick: just past midnight, so the 1h (23:00) and 1d (2024-01-12) bars are both due.
TICK_NOW = datetime(2024, 8, 1, 0, 0, 30, tzinfo=UTC)
SERIES = [("BTC/USDT", "1h"), ("ETH/USDT", "1h"), ("BTC/USDT", "1d"), ("ETH/USDT", "1d")]
CANDLE_FILES = {
    (symbol, timeframe): f"data/candles/binance_{symbol.replace('/', '')}_{timeframe}_2024-01_2024-09.csv"
    for symbol, timeframe in SERIES
}
HOLD = {
    "action": "HOLD",
    "confidence": 40,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 1,
    "reasoning": "No edge on this bar.",
    "key_factors": ["RSI 48"],
}


def fake_deepseek(latency: float) -> ThreadingHTTPServer:
    """Answers every chat completion with one HOLD tool call after `latency` seconds (each request on its thread)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length))
            time.sleep(latency)  # the provider's answer time this benchmark is about
            tool = request["tools"][0]["function"]["name"]
            body = json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "tool_calls",
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "tool_calls": [
                                    {
                                        "id": "call_1",
                                        "type": "function",
                                        "function": {"name": tool, "arguments": json.dumps(HOLD)},
                                    }
                                ],
                            },
                        }
                    ],
                    "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256  # a pool of 64 connecting at once must not overflow the listen backlog
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--pools", default="4,16,32", help="pool sizes to tick with, comma-separated")
    parser.add_argument("--series", type=int, default=len(SERIES), help="spread the watches over this many series")
    parser.add_argument(
        "--unshared",
        action="store_true",
        help="also tick with the default pool, each run building its own HTTP client and indicators (the old way)",
    )
    args = parser.parse_args()
    server = fake_deepseek(args.latency)
    instance = Path(tempfile.mkdtemp(prefix="steadyhand-bench-"))
    os.environ.update(
        STEADYHAND_INSTANCE_PATH=str(instance),
        STEADYHAND_ENV="test",
        STEADYHAND_MARKET="store",
        DEEPSEEK_API_KEY="sk-bench-0123456789",
        DEEPSEEK_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}",
    )
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("STEADYHAND_RUN_POOL_SIZE", None)

    from flask_migrate import upgrade
    from sqlalchemy.orm import Session

    from ai.signals import SignalServices
    from app import SETTINGS_EXTENSION, create_app
    from app.extensions import db, db_session
    from app.models import Account, AccountKind, User, Watch
    from app.services import analysis_inputs, markets, watch_runs
    from app.services.analyses import AnalysisRequest, run_analysis
    from app.services.credentials import signal_services
    from app.services.watch_runs import DueRun

    app = create_app()
    settings = app.extensions[SETTINGS_EXTENSION]
    default_pool = settings.scheduler.pool_size
    pools = [int(size) for size in args.pools.split(",")]
    configurations = [(pool, False) for pool in pools] + ([(default_pool, True)] if args.unshared else [])
    series = SERIES[: args.series]
    with app.app_context():
        upgrade()
        session = db_session()
        for symbol, timeframe in SERIES:
            markets.import_candle_file(
                session,
                settings,
                markets.CandleFileImport(ROOT / CANDLE_FILES[symbol, timeframe], "binance", symbol, timeframe),
            )
        hashed = User(email="bench@example.com")
        hashed.set_password("bench-password-0123")  # hashed once: hundreds of users, none of whom logs in

        def add_watch(name: str, balance: int, symbol: str, timeframe: str, source: str, enabled: bool) -> int:
            user = User(email=f"{name}@example.com", display_name=name)
            user.password_hash = hashed.password_hash
            session.add(user)
            session.flush()
            # A balance of its own per account: the prompts differ, so no run is a response-cache hit.
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
            watch = Watch(
                user_id=user.id,
                account_id=account.id,
                exchange_id="binance",
                symbol=symbol,
                timeframe=timeframe,
                cadence_minutes=60,
                signal_source=source,
                enabled=enabled,
            )
            session.add(watch)
            session.flush()
            return watch.id

        rules_watch_id = add_watch("rules", 100, "BTC/USDT", "1h", "rules:sma_cross", True)
        tick_watches: list[list[int]] = []
        for c in range(len(configurations)):
            tick_watches.append(
                [
                    add_watch(f"bench{c}-{i}", 1000 * (c + 1) + i, *series[i % len(series)], "deepseek", False)
                    for i in range(args.watches)
                ]
            )
        session.commit()

        # 1. Overhead of a run over its analysis, with the rules analyst (no provider).
        rules_watch = session.get(Watch, rules_watch_id)
        assert rules_watch is not None

        def services_for(s: Session, user_id: int) -> SignalServices:
            return signal_services(s, settings, user_id)

        run_times, analysis_times = [], []
        for repeat in range(args.repeats + 1):
            bar = BAR - timedelta(hours=repeat)
            analysis_inputs.shared_inputs.clear()  # each of the two reads its bar's inputs afresh
            started = time.perf_counter()
            run = watch_runs.claim(session, DueRun(rules_watch_id, bar, "schedule"), MARKET_NOW)
            assert run is not None
            watch_runs.execute_run(session, settings, run.id, services_for, "store", lambda: MARKET_NOW)
            run_time = time.perf_counter() - started
            request = AnalysisRequest(
                user_id=rules_watch.user_id,
                symbol="BTC/USDT",
                timeframe="1h",
                signals="rules:sma_cross",
                until=bar,
            )
            analysis_inputs.shared_inputs.clear()
            started = time.perf_counter()
            run_analysis(session, settings, request, services_for(session, rules_watch.user_id), lambda: MARKET_NOW)
            analysis_time = time.perf_counter() - started
            if repeat:  # the first of each is a warm-up (imports, caches)
                run_times.append(run_time)
                analysis_times.append(analysis_time)
        run_median, analysis_median = statistics.median(run_times), statistics.median(analysis_times)
        print(f"1. run overhead, median of {args.repeats} (rules:sma_cross, no provider)")
        print(f"   watch run (claim + execute_run)   {run_median * 1000:8.1f} ms")
        print(f"   peer: run_analysis alone          {analysis_median * 1000:8.1f} ms")
        print(f"   overhead of the run               {(run_median - analysis_median) * 1000:8.1f} ms   (goal < 50 ms)")
        rules_watch.enabled = False
        session.commit()
        db.session.remove()

    # 2. One tick of N deepseek watches per configuration, each answered after `latency` seconds.
    spread = ", ".join(f"{symbol} {timeframe}" for symbol, timeframe in series)
    print(f"2. one tick of {args.watches} deepseek watches ({spread}), provider answering in {args.latency:g} s")
    for (pool, unshared), watch_ids in zip(configurations, tick_watches, strict=True):
        analysis_inputs.shared_inputs.clear()
        with unshared_inputs() if unshared else contextlib.nullcontext():
            elapsed, cpu, runs = tick(create_app, {"STEADYHAND_RUN_POOL_SIZE": str(pool)}, watch_ids)
        label = f"pool {pool}{' (default)' if pool == default_pool else ''}"
        if unshared:
            label += ", unshared: an HTTP client (and SSL context) per provider, indicators per run"
        floor = math.ceil(len(runs) / pool) * args.latency
        ok = sum(1 for run in runs if run["status"] == "SUCCEEDED")
        step_ms: dict[str, list[float]] = defaultdict(list)
        for done in runs:
            for step in done["steps"]:
                if step["ms"]:
                    step_ms[step["step"]].append(step["ms"])
        steps = ", ".join(f"{name} {statistics.mean(ms):.0f}" for name, ms in step_ms.items())
        print(f"   {label}")
        print(f"      claimed {len(runs)}, succeeded {ok}; mean ms per run step: {steps}")
        print(
            f"      all done in {elapsed:6.2f} s (goal < 10 s), {cpu:5.1f} CPU-s; "
            f"peer: the pool's floor {floor:5.2f} s (ceil({len(runs)} / {pool}) x {args.latency:g} s)"
        )
        for done in runs:
            if done["status"] != "SUCCEEDED":
                print(f"      failed: {done['failed_step']}: {done['error_code']}: {done['error_message']}")
                break
    server.shutdown()


@contextlib.contextmanager
def unshared_inputs() -> Iterator[None]:
    """Runs as they were before the shared inputs: every DeepSeek provider lets the SDK build its own HTTP client
    (and with it an SSL context), and every run computes its own indicators."""
    from ai.indicators import compute_indicators
    from ai.providers import deepseek
    from app.services import analysis_inputs

    class NoSharedClient:
        def get(self) -> None:
            return None  # the provider passes http_client=None: the SDK builds its own, as before

    shared_client, shared_indicators = deepseek.SHARED_HTTP_CLIENT, analysis_inputs.indicators
    setattr(deepseek, "SHARED_HTTP_CLIENT", NoSharedClient())  # noqa: B010 - a stand-in of another type
    analysis_inputs.indicators = compute_indicators
    try:
        yield
    finally:
        deepseek.SHARED_HTTP_CLIENT, analysis_inputs.indicators = shared_client, shared_indicators


def tick(create_app: object, config: dict[str, str], watch_ids: list[int]) -> tuple[float, float, list[dict]]:
    """Enable `watch_ids` alone, run one scheduler tick with an app built with `config`, and wait for its runs:
    (seconds, process CPU seconds, the runs as dicts)."""
    from app.extensions import db, db_session
    from app.jobs.scheduler import WatchScheduler
    from app.models import Watch, WatchRun

    app = create_app(config)  # type: ignore[operator]
    with app.app_context():
        session = db_session()
        session.execute(db.update(Watch).values(enabled=Watch.id.in_(watch_ids)))
        session.commit()
        db.session.remove()
    scheduler = WatchScheduler(app, market_clock=lambda: TICK_NOW, say=lambda line: None)
    started, cpu_started = time.perf_counter(), time.process_time()
    report = scheduler.tick()
    scheduler.wait_idle()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    scheduler.pool.shutdown(wait=True)
    scheduler.notify_pool.shutdown(wait=True)
    with app.app_context():
        runs = [
            {
                "status": run.status.name,
                "steps": run.steps,
                "failed_step": run.failed_step,
                "error_code": run.error_code,
                "error_message": run.error_message,
            }
            for run in db_session().scalars(db.select(WatchRun).where(WatchRun.id.in_(report.claimed)))
        ]
        scheduler.leadership.release()
        db.session.remove()
    with app.app_context():
        db.engine.dispose()
    return elapsed, cpu, runs


if __name__ == "__main__":
    main()
