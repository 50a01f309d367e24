"""End to end: a live order survives SIGKILL between the exchange accepting it and Steadyhand recording its fill.

The real CLI (`flask --app wsgi ...` subprocesses on a temporary SQLite database) trades through ccxt against a fake
Binance in another process (tests/fakes/binance_server.py), reached through the account's exchange base URL. The fake
records and fills the order, then holds its response and says so; the test kills Steadyhand with SIGKILL. After a
restart, `reconcile` and a second `analyze --execute` at the same bar must leave one order on the exchange, its fill
recorded once with the fee its trades carry (the order query has none), and the position and cash the exchange
reports.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import Account, AuditEvent, Order, Position, PositionStatus, Trade
from exchanges.orders import OrderStatus
from tests.conftest import PROJECT_ROOT, clean_environ

FLASK = [str(PROJECT_ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi"]
API_KEY, SECRET = "fake-binance-key-0123456789", "fake-binance-secret-9876543210"
BUY_BAR = "2024-01-12 16:00"  # rsi_reversion on BTC/USDT 1h gives a BUY here
ANALYZE = ["analyze", "BTC/USDT", "--signals", "rules:rsi_reversion", "--until", BUY_BAR, "--execute", "--json"]
DEADLINE_SECONDS = 120


def wait_for[T](condition: Callable[[], T | None], what: str, process: subprocess.Popen | None = None) -> T:
    """Poll `condition` until it gives a value; fails after the deadline or when `process` has exited."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value is not None:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}:\n{process.communicate()}")
        time.sleep(0.05)  # polling a condition, not timing anything
    pytest.fail(f"{what}: not within {DEADLINE_SECONDS}s")


def file_text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STEADYHAND_", "DATABASE_URL", "SECRET_KEY", "FLASK_"))
    }
    return {**inherited, **clean_environ(tmp_path / "instance", f"sqlite:///{tmp_path / 'steadyhand.db'}")}


@pytest.fixture
def fake_binance(tmp_path) -> Iterator[tuple[str, Path]]:
    control = tmp_path / "fake-binance"
    control.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.binance_server", str(control), API_KEY, SECRET, "--hold-first-order"],
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = wait_for(lambda: file_text(control / "port"), "the fake Binance's port", server)
        yield f"http://127.0.0.1:{port}", control
    finally:
        server.kill()
        server.wait()


def cli(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*FLASK, *args], cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=DEADLINE_SECONDS
    )
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


def exchange_orders(base_url: str) -> list[dict]:
    with urllib.request.urlopen(f"{base_url}/fake/orders", timeout=10) as response:
        return json.loads(response.read())


def test_an_order_whose_caller_was_killed_is_settled_once_and_never_placed_twice(environ, fake_binance, tmp_path):
    base_url, control = fake_binance
    cli(environ, "db", "upgrade")
    cli(environ, "seed-demo")
    added = cli(
        environ,
        *("account", "add-live", "--name", "Fake Binance", "--base-url", base_url),
        *("--api-key", API_KEY, "--api-secret", SECRET, "--passphrase", ""),
    )
    assert f"via {base_url}" in added.stdout and SECRET not in added.stdout
    account_id = added.stdout.split("#", 1)[1].split()[0]
    assert f"via {base_url}" in cli(environ, "account", "list").stdout
    cli(environ, "reconcile", "--account", account_id)  # the 100 USDT the exchange holds

    analyze = subprocess.Popen(
        [*FLASK, *ANALYZE, "--account", account_id],
        cwd=PROJECT_ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client_order_id = wait_for(lambda: file_text(control / "order-held"), "the order reaching the exchange", analyze)
    analyze.send_signal(signal.SIGKILL)
    analyze.communicate()
    assert analyze.returncode == -signal.SIGKILL

    app = create_app(environ=clean_environ(tmp_path / "instance", environ["DATABASE_URL"]))
    with app.app_context():
        pending = db.session.scalars(select(Order).where(Order.client_order_id == client_order_id)).one()
        assert (pending.status, pending.filled_quantity) == (OrderStatus.PENDING, Decimal(0))
        db.session.remove()

    reconciled = cli(environ, "reconcile", "--account", account_id)
    assert (
        f"order {client_order_id}: pending" in reconciled.stdout and "-> closed 0.00084 on binance" in reconciled.stdout
    )
    # The fill was recorded net of its fee, so the BTC held is already the exchange's: nothing to adopt.
    assert "1 difference(s)" in reconciled.stdout and "position" not in reconciled.stdout, reconciled.stdout
    again = cli(environ, *ANALYZE, "--account", account_id)
    assert json.loads(again.stdout)["decision"].get("order") is None, again.stdout

    [on_exchange] = exchange_orders(base_url)
    assert on_exchange["clientOrderId"] == client_order_id
    quantity = Decimal(on_exchange["executedQty"])
    assert quantity == Decimal("0.00084")
    with app.app_context():
        [order] = db.session.scalars(select(Order).where(Order.account_id == int(account_id))).all()
        assert (order.status, order.filled_quantity) == (OrderStatus.CLOSED, quantity)
        assert order.exchange_order_id == str(on_exchange["orderId"])
        [fill] = db.session.scalars(select(Trade).where(Trade.order_id == order.id)).all()
        # Binance's order query (what reconcile reads) carries no commission; the order's trades do: 0.1% in BTC,
        # valued in USDT at the fill price. A buy's fee taken in the base asset leaves the trade's quantity net of it.
        assert (fill.fee, fill.fee_currency) == (Decimal("0.00000084"), "BTC")
        assert (fill.quantity, fill.price) == (quantity - fill.fee, Decimal("43630"))
        assert fill.fee_value == Decimal("0.00000084") * Decimal("43630") == Decimal("0.0366492")
        assert (order.fee, order.fee_currency) == (Decimal("0.00000084"), "BTC")
        [position] = db.session.scalars(select(Position).where(Position.account_id == int(account_id))).all()
        # The account holds 0.00084 - 0.00000084 BTC, recorded from the fill itself (no balance adoption above).
        assert (position.status, position.quantity) == (PositionStatus.OPEN, Decimal("0.00083916"))
        assert position.fees_paid == Decimal("0.0366492")
        differences = db.session.scalars(
            select(AuditEvent.message).where(
                AuditEvent.account_id == int(account_id), AuditEvent.event == "reconcile.difference"
            )
        ).all()
        assert not [message for message in differences if "position" in message], differences
        account = db.session.get(Account, int(account_id))
        assert account.current_balance == Decimal(100) - quantity * Decimal("43630")
        db.session.remove()
