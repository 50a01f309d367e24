"""Dashboard latency beside its peer: `GET /` of a signed-in user with 10,000 analyses and 1,000 trades against
`GET /healthz`, one gunicorn server.

Run: .venv/bin/python benchmarks/dashboard_latency.py [--analyses 10000] [--trades 1000] [--workers 2]
     [--concurrency 4] [--requests 1000] [--database sqlite|postgresql]
Prints one table (p50, p90, p99, max and requests per second) for `/healthz`, the dashboard `/`, its live part
`/dashboard/live` (what the page re-fetches every few seconds) and the account's equity curve
`/accounts/<id>/equity.json` (fetched once by the chart after the page loads), then the dashboard's p99 ratio beside
the goal of issue 12 (within 5x of /healthz). Nothing here is a test; exits 1 when any response was not 200.

Setup, on a fresh migrated database: the API benchmark's users and analyses (`benchmarks/api_latency.populate`),
then for the benchmark user's paper account `--trades` fills (a buy and a sell of BTC/USDT per closed position,
each with its order, one round trip every 6 hours from 2024-01-02), 10 of them linked to analyses through risk
decisions, and the bundled BTC/USDT 1h candles in the store (the curve marks holdings at their closes). The user
signs in through the real form; every request carries that session cookie. The server runs in production mode
(as the Procfile starts it) on the replay market, the default.
"""

import argparse
import http.client
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api_latency import WARMUP, free_port, load, percentile, populate, server_environ, start_server  # noqa: E402

GOAL = 5.0
EMAIL, PASSWORD = "bench@example.com", "benchmark password"
CANDLES = ROOT / "data" / "candles" / "binance_BTCUSDT_1h_2024-01_2024-09.csv"


def add_trades(environ: dict[str, str], trades: int) -> int:
    """Give the benchmark user a password and `trades` fills on their paper account; the account's id."""
    from sqlalchemy import select

    from app import create_app
    from app.extensions import db, db_session
    from app.models import Account, Analysis, Decision, Order, Position, PositionStatus, Trade, User
    from app.persistence.candles import import_candles
    from exchanges.candles import read_candle_csv
    from exchanges.orders import OrderSide, OrderStatus, OrderType

    app = create_app(environ=environ)
    with app.app_context():
        session = db_session()
        user = session.scalars(select(User).where(User.email == EMAIL)).one()
        user.set_password(PASSWORD)
        account = session.scalars(select(Account).where(Account.user_id == user.id)).one()
        analyses = list(session.scalars(select(Analysis.id).where(Analysis.user_id == user.id).limit(10)))
        quantity, fee_rate = Decimal("0.0002"), Decimal("0.001")
        cash = account.starting_balance
        start = datetime(2024, 1, 2, tzinfo=UTC)
        for n in range(trades // 2):
            opened, closed = start + timedelta(hours=6 * n), start + timedelta(hours=6 * n + 3)
            entry, exit_ = Decimal(42000 + (n % 40) * 50), Decimal(42000 + (n % 37) * 55)
            buy_fee, sell_fee = quantity * entry * fee_rate, quantity * exit_ * fee_rate
            pnl = quantity * (exit_ - entry) - buy_fee - sell_fee
            cash += pnl
            decision_id = None
            if n < len(analyses):
                spec = {
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "quantity": str(quantity),
                    "order_type": "market",
                    "stop_loss": str(entry * Decimal("0.98")),
                    "take_profit": str(entry * Decimal("1.03")),
                    "reference_price": str(entry),
                    "notional": str(quantity * entry),
                    "risk_amount": str(quantity * entry * Decimal("0.02")),
                }
                decision = Decision(
                    analysis_id=analyses[n], account_id=account.id, approved=True, reasons=[], order_spec=spec
                )
                session.add(decision)
                session.flush()
                decision_id = decision.id
            position = Position(
                account_id=account.id,
                symbol="BTC/USDT",
                status=PositionStatus.CLOSED,
                quantity=Decimal(0),
                entry_price=entry,
                cost_basis=quantity * entry + buy_fee,
                realized_pnl=pnl,
                fees_paid=buy_fee + sell_fee,
                opened_at=opened,
                closed_at=closed,
            )
            session.add(position)
            session.flush()
            for side, price, fee, at in (
                (OrderSide.BUY, entry, buy_fee, opened),
                (OrderSide.SELL, exit_, sell_fee, closed),
            ):
                order = Order(
                    account_id=account.id,
                    decision_id=decision_id if side is OrderSide.BUY else None,
                    client_order_id=f"bench-{n}-{side.value}",
                    symbol="BTC/USDT",
                    side=side,
                    order_type=OrderType.MARKET,
                    status=OrderStatus.CLOSED,
                    quantity=quantity,
                    filled_quantity=quantity,
                    average_fill_price=price,
                    fee=fee,
                    fee_currency="USDT",
                )
                session.add(order)
                session.flush()
                session.add(
                    Trade(
                        account_id=account.id,
                        order_id=order.id,
                        position_id=position.id,
                        symbol="BTC/USDT",
                        side=side,
                        quantity=quantity,
                        price=price,
                        fee=fee,
                        fee_currency="USDT",
                        fee_value=fee,
                        realized_pnl=pnl if side is OrderSide.SELL else None,
                        executed_at=at,
                    )
                )
        account.current_balance = cash
        import_candles(session, "binance", "BTC/USDT", "1h", read_candle_csv(CANDLES, "1h"))
        session.commit()
        account_id = account.id
        db.session.remove()
        db.engine.dispose()
    return account_id


def sign_in(port: int) -> str:
    """The session cookie of the benchmark user, signed in through the form with its CSRF token."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    body = urlencode({"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    connection.request("POST", "/login", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 302:
        sys.exit(f"FAILED: signing in answered {response.status}")
    return response.getheader("Set-Cookie", "").split(";")[0]


def main() -> None:
    from benchmarks.celery_throughput import DEFAULT_POSTGRES_URL, Database

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyses", type=int, default=10_000, help="the benchmark user's analyses")
    parser.add_argument("--trades", type=int, default=1_000, help="the benchmark user's fills")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--concurrency", type=int, default=4, help="load generator threads")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per endpoint")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="with --database postgresql")
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="steadyhand-dashboard-bench-"))
    database = Database(args.database, instance, args.postgres_url)
    server = None
    try:
        environ = server_environ(instance, database.url)
        started = time.perf_counter()
        populate(environ, args.analyses)
        account_id = add_trades(environ, args.trades)
        print(
            f"populated {args.analyses:,} analyses and {args.trades:,} fills in {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        server = start_server(environ, args.workers, port, instance / "gunicorn.log")
        cookie = {"Cookie": sign_in(port)}
        equity = f"/accounts/{account_id}/equity.json"
        paths = {name: name for name in ("/healthz", "/", "/dashboard/live", equity)}
        headers = {path: cookie for path in paths if path != "/healthz"}
        load_before = os.getloadavg()
        warm_failure = load(port, paths, headers, WARMUP, args.concurrency)[2]
        if warm_failure:
            sys.exit(f"FAILED: {warm_failure[0]}")
        latencies, failures, first_failure, seconds = load(port, paths, headers, args.requests, args.concurrency)
        load_after = os.getloadavg()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        database.drop()

    if first_failure:
        sys.exit(f"FAILED: {first_failure[0]}")
    print(
        f"\n{args.database}; {args.analyses:,} analyses, {args.trades:,} fills; gunicorn {args.workers} sync workers; "
        f"{args.concurrency} client threads, {args.requests:,} timed requests per endpoint, interleaved"
    )
    print(
        f"{'endpoint':<32}{'requests':>9}{'non-200':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>8}"
    )
    p50, p99 = {}, {}
    for name, values in latencies.items():
        ordered = sorted(values)
        p50[name], p99[name] = percentile(ordered, 0.5), percentile(ordered, 0.99)
        print(
            f"{name:<32}{len(ordered):>9,}{failures[name]:>9}{p50[name]:>9.1f}"
            f"{percentile(ordered, 0.9):>9.1f}{p99[name]:>9.1f}{ordered[-1]:>9.1f}{len(ordered) / seconds:>8.0f}"
        )
    for name in ("/", "/dashboard/live", equity):
        ratio = p50[name] / p50["/healthz"], p99[name] / p99["/healthz"]
        verdict = "met" if ratio[1] <= GOAL else "NOT met"
        print(f"{name} / /healthz: p50 {ratio[0]:.2f}x, p99 {ratio[1]:.2f}x (goal: p99 within {GOAL:g}x: {verdict})")
    print(
        f"(load average at start {load_before[0]:.2f}, at end {load_after[0]:.2f}; {os.cpu_count()} cores; "
        f"{seconds:.1f} s timed)"
    )
    if any(failures.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
