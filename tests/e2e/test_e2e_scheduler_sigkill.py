"""End to end: the scheduler is killed with SIGKILL in the middle of a watch run, between the exchange accepting the
run's order and the fill being recorded; a restarted scheduler fails the run at once (no run left hanging), settles
the order with the exchange, and nothing is bought twice.

Real processes: `flask --app wsgi scheduler` on a temporary SQLite database, a live account trading through ccxt
with a fake Binance in another process (tests/fakes/binance_server.py) as its exchange base URL. The fake's klines
put the bar where rules:rsi_reversion buys as the latest closed hour, so the scheduler's wall-clock run buys; the
fake records and fills that order, then holds its response and says so.
"""

import signal
import subprocess
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import Order, Position, PositionStatus, RunStatus, Trade, WatchRun
from exchanges.orders import OrderStatus
from tests.conftest import PROJECT_ROOT, clean_environ
from tests.e2e.test_e2e_exactly_once_binance import (
    API_KEY,
    FLASK,
    SECRET,
    cli,
    environ,  # noqa: F401 (a fixture)
    exchange_orders,
    fake_binance,  # noqa: F401 (a fixture)
    file_text,
    wait_for,
)


def start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*FLASK, "scheduler"],
        cwd=PROJECT_ROOT,
        env={**env, "STEADYHAND_MARKET": "store", "STEADYHAND_SETTLE_SECONDS": "0"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def logged(log: Path, text: str) -> str | None:
    content = log.read_text() if log.exists() else ""
    return content if text in content else None


def test_a_scheduler_killed_mid_run_leaves_one_order_a_failed_run_and_a_reconciled_account(
    environ,  # noqa: F811
    fake_binance,  # noqa: F811
    tmp_path,
):
    base_url, control = fake_binance
    cli(environ, "db", "upgrade")
    cli(environ, "seed-demo")
    for line in cli(environ, "watch", "list").stdout.splitlines():
        if line.startswith("#"):
            cli(environ, "watch", "pause", line[1:].split()[0])  # only the live account's watch runs here
    added = cli(
        environ,
        *("account", "add-live", "--name", "Fake Binance", "--base-url", base_url),
        *("--api-key", API_KEY, "--api-secret", SECRET, "--passphrase", ""),
    )
    account_id = added.stdout.split("#", 1)[1].split()[0]
    cli(environ, "reconcile", "--account", account_id)  # the 100 USDT the exchange holds
    watch = cli(
        environ,
        *("watch", "add", "BTC/USDT", "--signals", "rules:rsi_reversion", "--account", account_id, "--auto-execute"),
    )
    watch_id = watch.stdout.split("#", 1)[1].split()[0]

    first_log = tmp_path / "scheduler-1.log"
    first = start_scheduler(environ, first_log)
    try:
        client_order_id = wait_for(lambda: file_text(control / "order-held"), "the run's order reaching Binance", first)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    assert first.returncode == -signal.SIGKILL

    app = create_app(environ=clean_environ(tmp_path / "instance", environ["DATABASE_URL"]))
    with app.app_context():
        [run] = db.session.scalars(select(WatchRun).where(WatchRun.watch_id == int(watch_id))).all()
        assert run.status is RunStatus.RUNNING  # what the killed scheduler left
        pending = db.session.scalars(select(Order).where(Order.client_order_id == client_order_id)).one()
        assert pending.status is OrderStatus.PENDING
        db.session.remove()

    second_log = tmp_path / "scheduler-2.log"
    second = start_scheduler(environ, second_log)
    try:
        # It leads at once (the dead leader's lease is taken over), fails the hanging run and settles its order.
        output = wait_for(lambda: logged(second_log, f"reconcile account #{account_id}: "), "reconciliation", second)
        assert "leading" in output and f"run(s) #{run.id} failed: their worker stopped mid-run" in output
        assert f"order {client_order_id}: pending 0E-10 -> closed 0.00084 on binance" in output
        # The restarted scheduler has nothing to run again for that bar: the run key holds it.
        run_now = subprocess.run(
            [*FLASK, "watch", "run", watch_id], cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True
        )
        # The bar's run, failed: shown as it is (exit 1), never run a second time.
        assert run_now.returncode == 1 and run_now.stdout.startswith(f"run #{run.id} watch #{watch_id} "), run_now
        assert "failed at run: INTERRUPTED" in run_now.stdout, run_now.stdout
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=60)

    [on_exchange] = exchange_orders(base_url)  # one order, ever
    assert on_exchange["clientOrderId"] == client_order_id
    with app.app_context():
        run = db.session.get(WatchRun, run.id)
        assert (run.status, run.error_code) == (RunStatus.FAILED, "INTERRUPTED")
        assert db.session.scalars(select(WatchRun)).all() == [run]  # no lost run, no second one
        [order] = db.session.scalars(select(Order).where(Order.account_id == int(account_id))).all()
        assert (order.status, order.filled_quantity) == (OrderStatus.CLOSED, Decimal("0.00084"))
        [fill] = db.session.scalars(select(Trade).where(Trade.order_id == order.id)).all()
        assert (fill.fee, fill.fee_currency) == (Decimal("0.00000084"), "BTC")
        [position] = db.session.scalars(select(Position).where(Position.account_id == int(account_id))).all()
        assert (position.status, position.quantity) == (PositionStatus.OPEN, Decimal("0.00083916"))
        db.session.remove()
