"""Scheduled runs: the run's own overhead, and one tick of 100 watches against a provider that answers in 1 s.

Run: .venv/bin/python benchmarks/scheduler_runs.py [--watches 100] [--latency 1.0] [--repeats 20]
Prints two tables; nothing here is a test.

1. Run overhead (goal under 50 ms): a watch run of `rules:sma_cross` (no provider, so no provider latency) through
   `watch_runs.claim` + `execute_run` beside its peer, the same analysis through `run_analysis` alone. The
   difference is what the run adds: claiming the (watch, bar) row, the step log, and recording the outcome.
2. One tick of N watches (goal: 100 done in under 10 s with the default pool): N users, each with a paper account
   and a `deepseek` watch, against a fake DeepSeek on 127.0.0.1 speaking the OpenAI wire format (the real openai
   SDK calls it) that answers each request after `--latency` seconds. The peer is the floor the pool allows:
   ceil(N / pool size) x latency.

Both run on a temporary SQLite instance with the bundled BTC/USDT 1h 2024 candles (the store market, so the run's
bar is fixed: 2024-01-12 16:00).
"""

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)
MARKET_NOW = BAR + timedelta(hours=1, seconds=30)
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=20)
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

    from flask_migrate import upgrade
    from sqlalchemy.orm import Session

    from ai.signals import SignalServices
    from app import SETTINGS_EXTENSION, create_app
    from app.extensions import db, db_session
    from app.jobs.scheduler import WatchScheduler
    from app.models import Account, AccountKind, RunStatus, User, Watch, WatchRun
    from app.services import markets, watch_runs
    from app.services.analyses import AnalysisRequest, run_analysis
    from app.services.credentials import signal_services
    from app.services.watch_runs import DueRun

    app = create_app()
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
        users = []
        for i in range(args.watches):
            user = User(email=f"bench{i}@example.com", display_name=f"Bench {i}")
            user.set_password("bench-password-0123")
            session.add(user)
            session.flush()
            account = Account(
                user_id=user.id,
                name="Paper",
                kind=AccountKind.PAPER,
                exchange_id="binance",
                # A balance of its own per account: the prompts differ, so no run is a response-cache hit.
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
                    signal_source="deepseek",
                )
            )
            users.append(user.id)
        session.commit()

        # 1. Overhead of a run over its analysis, with the rules analyst (no provider).
        rules_watch = session.get(Watch, 1)
        assert rules_watch is not None
        rules_watch.signal_source = "rules:sma_cross"
        session.commit()

        def services_for(s: Session, user_id: int) -> SignalServices:
            return signal_services(s, settings, user_id)

        run_times, analysis_times = [], []
        for repeat in range(args.repeats + 1):
            bar = BAR - timedelta(hours=repeat)
            started = time.perf_counter()
            run = watch_runs.claim(session, DueRun(1, bar, "schedule"), MARKET_NOW)
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

    # 2. One tick of N deepseek watches, each answered after `latency` seconds.
    scheduler = WatchScheduler(app, market_clock=lambda: MARKET_NOW, say=lambda line: None)
    pool = settings.scheduler.pool_size
    started = time.perf_counter()
    report = scheduler.tick()
    scheduler.wait_idle()
    elapsed = time.perf_counter() - started
    scheduler.pool.shutdown(wait=True)
    scheduler.notify_pool.shutdown(wait=True)
    with app.app_context():
        runs = list(db_session().scalars(db.select(WatchRun).where(WatchRun.trigger != "manual")))
        done = [r for r in runs if r.id in set(report.claimed)]
        ok = sum(1 for r in done if r.status is RunStatus.SUCCEEDED)
        failed = [r for r in done if r.status is RunStatus.FAILED]
        scheduler.leadership.release()
    floor = math.ceil(len(report.claimed) / pool) * args.latency
    print(f"2. one tick of {args.watches} deepseek watches, provider answering in {args.latency:g} s, pool {pool}")
    print(f"   claimed {len(report.claimed)}, succeeded {ok}, failed {len(failed)}")
    print(f"   all done in                       {elapsed:8.2f} s   (goal < 10 s)")
    formula = f"ceil({len(report.claimed)} / {pool}) x {args.latency:g} s"
    print(f"   peer: the pool's floor            {floor:8.2f} s   ({formula})")
    for run in failed[:3]:
        print(f"   failed: {run.failed_step}: {run.error_code}: {run.error_message}")
    server.shutdown()


if __name__ == "__main__":
    main()
