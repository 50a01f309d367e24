"""Reconciliation at its service, on SQLite and PostgreSQL: an order whose outcome was never learnt is settled
against the exchange (paper, or ccxt against recorded Binance responses), or deferred while the exchange is down."""

import json
import re
from decimal import Decimal

import pytest
import requests
import responses
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import AuditEvent, Order, Position, Trade
from app.services.reconciliation import reconcile_account
from exchanges.orders import OrderSide, OrderStatus, OrderType
from tests import factories
from tests.conftest import PROJECT_ROOT

RECORDINGS = PROJECT_ROOT / "tests" / "recordings" / "binance"
ORDER_URL = re.compile(r"https://api\.binance\.com/api/v3/order(\?.*)?$")
ACCOUNT_URL = re.compile(r"https://api\.binance\.com/api/v3/account(\?.*)?$")
MY_TRADES_URL = re.compile(r"https://api\.binance\.com/api/v3/myTrades\?.*")


def recording(name):
    return json.loads((RECORDINGS / name).read_text())


@pytest.fixture
def trader(app):
    user = factories.user(db.session, email="trader@example.com", display_name="Trader")
    paper = factories.paper_account(db.session, user, name="Paper")
    db.session.commit()
    return user, paper


def live_account(user):
    account = factories.live_account(db.session, user, name="Live", label="main")
    db.session.commit()
    return account


def pending_order(account, client_order_id="sh9d9", quantity="0.00053"):
    order = Order(
        account_id=account.id,
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        status=OrderStatus.PENDING,
        quantity=Decimal(quantity),
    )
    db.session.add(order)
    db.session.commit()
    return order


def test_reconcile_marks_a_paper_order_that_never_reached_the_exchange(app, trader):
    _, paper = trader
    pending_order(paper)
    report = reconcile_account(db.session, current_settings(), paper, sleep=lambda s: None)
    assert report.differences == ["order sh9d9 never reached paper: marked rejected"]
    order = db.session.scalars(select(Order)).one()
    assert (order.status, order.error_code) == (OrderStatus.REJECTED, "NEVER_REACHED_EXCHANGE")
    assert "reconcile.difference" in [e.event for e in db.session.scalars(select(AuditEvent))]


@responses.activate
def test_reconcile_defers_while_binance_is_down_and_settles_later(app, trader):
    user, _ = trader
    account = live_account(user)
    pending_order(account)
    responses.get(ORDER_URL, body=requests.ConnectionError("down"))
    waits = []
    report = reconcile_account(db.session, current_settings(), account, sleep=waits.append)
    assert report.deferred and report.differences == []
    assert len(waits) == 3  # retried with backoff before deferring
    assert db.session.scalars(select(Order)).one().status is OrderStatus.PENDING
    assert [e.event for e in db.session.scalars(select(AuditEvent))] == ["reconcile.deferred"]

    responses.replace(responses.GET, ORDER_URL, json=recording("order_query_filled.json") | {"clientOrderId": "sh9d9"})
    responses.get(ACCOUNT_URL, json=recording("account.json"))
    responses.get(MY_TRADES_URL, json=recording("my_trades_order_40172345112.json"))
    report = reconcile_account(db.session, current_settings(), account, sleep=waits.append)
    assert not report.deferred
    assert report.differences[0] == "order sh9d9: pending 0E-10 -> closed 0.00053 on binance"
    db.session.expire_all()
    order = db.session.scalars(select(Order)).one()
    assert (order.status, order.filled_quantity) == (OrderStatus.CLOSED, Decimal("0.00053"))
    position = db.session.scalars(select(Position)).one()
    # 0.00053 filled, the 0.00000053 BTC fee read from the order's trades: the book holds what the exchange does.
    assert position.quantity == Decimal("0.00052947")
    trade = db.session.scalars(select(Trade)).one()
    assert (trade.fee, trade.fee_currency) == (Decimal("0.00000053"), "BTC")
    events = [e.event for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert events.count("reconcile.difference") == len(report.differences) >= 2
