"""A trading step after a crash, on SQLite and PostgreSQL: an order whose sender died (a scheduler or worker killed
between sending it and recording its fill) is settled with the exchange before anything new is decided, so the
next bar neither loses the fill nor buys a second time; and one trading step per account at a time.

Live Binance through ccxt against its recorded wire format (tests/services/test_money_paths_live.py's fake).
"""

import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Order, Position, PositionStatus, SchedulerLease
from app.services.account_lock import AccountBusyError, account_lock
from exchanges.orders import OrderStatus
from tests import factories
from tests.services.test_money_paths_live import (
    BUY_BAR,
    ORDER_URL,
    analyse,
    binance,  # noqa: F401 (a fixture)
)

# What a killed sender leaves: the order committed PENDING before it went out, its fill never recorded.
from tests.services.test_reconciliation import pending_order as sent_and_never_recorded
from tests.services.test_reconciliation import recording

D = Decimal


MY_TRADES_URL = re.compile(r"https://api\.binance\.com/api/v3/myTrades\?.*")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def trader(app):
    user = factories.user(db.session)
    live = factories.live_account(db.session, user, label="main")
    paper = factories.paper_account(db.session, user, name="Paper")
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, live, paper


def codes(result):
    return [reason["code"] for reason in result.trade.decision.reasons]


def test_a_fill_whose_sender_died_is_recorded_before_the_next_bar_decides_and_no_second_buy_is_sent(
    trader,
    binance,  # noqa: F811
):
    user, live, _ = trader
    mock, fake = binance
    sent_and_never_recorded(live)
    mock.get(ORDER_URL, json=recording("order_query_filled.json") | {"clientOrderId": "sh9d9"})
    mock.get(MY_TRADES_URL, json=recording("my_trades_order_40172345112.json"))

    result = analyse(user, live, BUY_BAR)  # rsi_reversion says BUY here

    assert "settled before trading: order sh9d9: pending 0E-10 -> closed 0.00053 on binance" in result.trade.notes
    db.session.expire_all()
    [position] = db.session.scalars(select(Position)).all()
    assert (position.status, position.quantity) == (PositionStatus.OPEN, D("0.00052947"))  # net of the BTC fee
    assert not result.trade.decision.approved and "ALREADY_IN_POSITION" in codes(result)
    assert result.trade.order is None and fake.orders == []  # nothing was sent
    differences = db.session.scalars(select(AuditEvent.message).where(AuditEvent.event == "reconcile.difference"))
    assert "order sh9d9: pending 0E-10 -> closed 0.00053 on binance" in list(differences)


def test_while_an_earlier_order_cannot_be_checked_no_new_order_is_sent(trader, binance):  # noqa: F811
    user, live, _ = trader
    mock, fake = binance
    sent_and_never_recorded(live)
    mock.get(ORDER_URL, body=requests.ConnectionError("connection reset"))

    result = analyse(user, live, BUY_BAR)

    assert not result.trade.decision.approved and codes(result) == ["ORDER_UNSETTLED"]
    [reason] = result.trade.decision.reasons
    assert reason["message"].startswith("order sh9d9 could not be checked on binance (")
    assert reason["message"].endswith(": no new order until it is settled (reconcile settles it)")
    assert reason["values"] == {"orders": "sh9d9"}
    assert fake.orders == [] and result.trade.order is None
    db.session.expire_all()
    assert db.session.scalars(select(Order)).one().status is OrderStatus.PENDING  # left for reconcile


def test_a_paper_order_killed_before_its_fill_never_happened_and_the_bar_trades_normally(trader):
    user, _, paper = trader
    sent_and_never_recorded(paper)

    result = analyse(user, paper, BUY_BAR)

    assert "settled before trading: order sh9d9 never reached paper: marked rejected" in result.trade.notes
    assert result.trade.decision.approved and result.trade.order.status is OrderStatus.CLOSED
    db.session.expire_all()
    statuses = {order.client_order_id: order.status for order in db.session.scalars(select(Order))}
    assert statuses["sh9d9"] is OrderStatus.REJECTED
    assert [status for status in statuses.values()].count(OrderStatus.CLOSED) == 1


def test_a_second_trading_step_waits_for_the_first_and_gives_up_with_a_clear_error(trader):
    _, _, paper = trader
    waits = []
    second = account_lock(db.session, paper, wait=timedelta(seconds=0), sleep=waits.append)
    with account_lock(db.session, paper), pytest.raises(AccountBusyError) as caught, second:
        pytest.fail("two holders of one account's lock")
    assert caught.value.code == "ACCOUNT_BUSY"
    assert caught.value.message.startswith(f"account #{paper.id} (Paper) is busy: another trading step ")
    assert caught.value.message.endswith("has held it for more than 0 s; nothing was done")
    with account_lock(db.session, paper, wait=timedelta(seconds=0)):  # released: free again at once
        pass


def dead_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(process.stdout)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    pytest.skip(f"pid {pid} was reused at once")


def lease(account, holder, expires_at):
    db.session.add(
        SchedulerLease(
            name=f"account:{account.id}", holder=holder, acquired_at=NOW, renewed_at=NOW, expires_at=expires_at
        )
    )
    db.session.commit()


def test_sqlite_a_lease_left_by_a_dead_process_of_this_host_is_taken_over_at_once(trader, backend):
    if backend != "sqlite":
        pytest.skip("PostgreSQL frees the advisory lock of a dead process itself")
    _, _, paper = trader
    lease(paper, f"{socket.gethostname()}:{dead_pid()}#dead01", NOW + timedelta(days=1))
    with account_lock(db.session, paper, wait=timedelta(seconds=0), clock=lambda: NOW):
        holder = db.session.scalars(select(SchedulerLease.holder)).one()
        assert holder.startswith(f"{socket.gethostname()}:{os.getpid()}#")


def test_sqlite_another_hosts_lease_holds_until_it_expires(trader, backend):
    if backend != "sqlite":
        pytest.skip("leases are SQLite's lock")
    _, _, paper = trader
    lease(paper, "worker-2:4242#abc123", NOW + timedelta(minutes=10))
    busy = pytest.raises(AccountBusyError, match=r"another trading step \(worker-2:4242\) has held it")
    with busy, account_lock(db.session, paper, wait=timedelta(seconds=0), clock=lambda: NOW):
        pass
    later = NOW + timedelta(minutes=11)
    with account_lock(db.session, paper, wait=timedelta(seconds=0), clock=lambda: later):
        pass
    assert db.session.scalars(select(SchedulerLease)).all() == []  # released


def test_a_waiting_step_gives_up_after_its_wait_and_the_lock_stays_usable(trader):
    _, _, paper = trader
    waits = []
    second = account_lock(db.session, paper, wait=timedelta(milliseconds=200), sleep=waits.append)
    with account_lock(db.session, paper), pytest.raises(AccountBusyError), second:
        pytest.fail("two holders of one account's lock")
    # PostgreSQL waits inside the database (lock_timeout), SQLite polls: either way it gave up, and nobody holds it.
    with account_lock(db.session, paper, wait=timedelta(seconds=0)):
        pass
