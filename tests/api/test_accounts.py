"""/api/v1/accounts and /api/v1/kill-switch on SQLite and PostgreSQL: an account after a filled BUY of the bundled
BTC/USDT 1h candles (its BTC, the order and the fill with the fee currency), pages of orders, the account's kill
switch and its resume, the global switch's state, scopes, bad input, and someone else's ids."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import Account, Order, Trade
from app.services import kill_switch
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from exchanges.orders import OrderSide, OrderStatus, OrderType
from risk import TradingState
from tests import factories
from tests.api.conftest import ApiClient, issue

# rules:rsi_reversion on BTC/USDT 1h buys at the 16:00 bar (entry 43,624.00, stop 42,434.55); the stop is hit at
# 22:00. The store's newest candle (2024-09-06 03:00) closes at 56,588: the latest price an open position is worth.
BUY_BAR = datetime(2024, 1, 12, 16, 0, tzinfo=UTC)
STOP_BAR = datetime(2024, 1, 12, 22, 0, tzinfo=UTC)
ENTRY, STOP, QUANTITY = Decimal("43624"), Decimal("42434.55"), Decimal("0.00084")
FEE = QUANTITY * ENTRY * Decimal("0.001")
LATEST = Decimal("56588")
ROUTES = ["", "/positions", "/orders", "/trades"]


def analyse(user, account, until):
    request = AnalysisRequest(
        user_id=user.id,
        symbol="BTC/USDT",
        timeframe="1h",
        signals="rules:rsi_reversion",
        account_id=account.id,
        until=until,
        execute=True,
    )
    result = run_analysis(
        db.session, current_settings(), request, signal_services(db.session, current_settings(), user.id)
    )
    db.session.commit()
    return result


@pytest.fixture
def bought(caller):
    """The caller's paper account after the BUY at 16:00 filled."""
    factories.candles(db.session)
    db.session.commit()
    result = analyse(caller.user, caller.account, BUY_BAR)
    assert result.trade.order.status is OrderStatus.CLOSED
    return result


def as_decimal(text: str) -> Decimal:
    return Decimal(text)


def test_the_account_list_shows_money_and_state(caller, stranger, bought):
    response = caller.get("/api/v1/accounts")
    assert response.status_code == 200
    [item] = response.json["items"]  # the stranger's account is not listed
    cash = Decimal(100) - QUANTITY * ENTRY - FEE
    assert item["id"] == caller.account.id
    assert (item["kind"], item["exchange"], item["quote_currency"]) == ("paper", "binance", "USDT")
    assert as_decimal(item["starting_balance"]) == 100
    assert as_decimal(item["cash_balance"]) == cash
    assert as_decimal(item["equity"]) == cash + QUANTITY * LATEST
    assert as_decimal(item["unrealized_pnl"]) == QUANTITY * LATEST - (QUANTITY * ENTRY + FEE)
    assert as_decimal(item["realized_pnl"]) == 0
    assert (item["trading_state"], item["state_reason"], item["unpriced_symbols"]) == ("ACTIVE", None, [])
    assert item["created_at"].endswith("+00:00")


def test_one_account_has_its_balances_equity_and_risk_settings(caller, bought):
    response = caller.get(f"/api/v1/accounts/{caller.account.id}")
    assert response.status_code == 200
    body = response.json
    cash = Decimal(100) - QUANTITY * ENTRY - FEE
    assert [(b["currency"], as_decimal(b["amount"])) for b in body["balances"]] == [("USDT", cash), ("BTC", QUANTITY)]
    assert as_decimal(body["positions_value"]) == QUANTITY * LATEST
    assert as_decimal(body["equity"]) == cash + QUANTITY * LATEST
    settings = {s["name"]: s for s in body["risk_settings"]}
    assert settings and all(s["meaning"] and s["overridden"] is False for s in settings.values())
    assert all(not isinstance(s["value"], float) for s in settings.values())  # money is never a float


def test_positions_show_the_open_one_priced_and_then_the_closed_one(caller, bought):
    response = caller.get(f"/api/v1/accounts/{caller.account.id}/positions")
    assert response.status_code == 200
    body = response.json
    assert (body["quote_currency"], body["closed"]) == ("USDT", [])
    [held] = body["open"]
    assert (held["symbol"], held["base_currency"]) == ("BTC/USDT", "BTC")
    assert (as_decimal(held["quantity"]), as_decimal(held["entry_price"])) == (QUANTITY, ENTRY)
    assert as_decimal(held["stop_loss"]) == STOP
    assert as_decimal(held["latest_price"]) == LATEST
    assert as_decimal(held["unrealized_pnl"]) == QUANTITY * LATEST - (QUANTITY * ENTRY + FEE)
    assert held["opened_at"].startswith("2024-01-12T")

    analyse(caller.user, caller.account, STOP_BAR)
    body = caller.get(f"/api/v1/accounts/{caller.account.id}/positions").json
    assert body["open"] == []
    [closed] = body["closed"]
    assert closed["id"] == held["id"] and closed["closed_at"] is not None
    assert as_decimal(closed["realized_pnl"]) < 0  # stopped out below the entry, fees on both sides


def test_the_filled_buy_is_in_orders_and_trades_with_its_fee_currency(caller, bought):
    orders = caller.get(f"/api/v1/accounts/{caller.account.id}/orders")
    assert orders.status_code == 200
    [order] = orders.json["items"]
    assert orders.json["next_cursor"] is None
    assert order["id"] == bought.trade.order.id
    assert order["analysis_id"] == bought.analysis.id and order["decision_id"] == bought.trade.decision.id
    assert (order["symbol"], order["side"], order["type"], order["status"]) == ("BTC/USDT", "buy", "market", "closed")
    assert as_decimal(order["quantity"]) == as_decimal(order["filled_quantity"]) == QUANTITY
    assert as_decimal(order["average_fill_price"]) == ENTRY
    assert (as_decimal(order["fee"]), order["fee_currency"], order["error_code"]) == (FEE, "USDT", None)

    trades = caller.get(f"/api/v1/accounts/{caller.account.id}/trades")
    assert trades.status_code == 200
    [fill] = trades.json["items"]
    assert (fill["order_id"], fill["symbol"], fill["side"]) == (order["id"], "BTC/USDT", "buy")
    assert (as_decimal(fill["price"]), as_decimal(fill["quantity"])) == (ENTRY, QUANTITY)
    assert (as_decimal(fill["fee"]), fill["fee_currency"], fill["realized_pnl"]) == (FEE, "USDT", None)
    assert fill["executed_at"].startswith("2024-01-12T")

    analyse(caller.user, caller.account, STOP_BAR)
    sell, buy = caller.get(f"/api/v1/accounts/{caller.account.id}/trades").json["items"]  # newest first
    assert (sell["side"], buy["id"]) == ("sell", fill["id"])
    assert as_decimal(sell["realized_pnl"]) < 0


def _orders(account, count):
    for number in range(count):
        db.session.add(
            Order(
                account_id=account.id,
                client_order_id=f"test-{account.id}-{number}",
                symbol="ETH/USDT" if number % 2 else "BTC/USDT",
                side=OrderSide.BUY,
                order_type=OrderType.MARKET,
                status=OrderStatus.REJECTED if number == 4 else OrderStatus.CLOSED,
                quantity=Decimal("0.01"),
                error_code="INSUFFICIENT_FUNDS" if number == 4 else None,
            )
        )
    db.session.commit()


def test_orders_come_in_pages_newest_first_and_filter(caller, stranger):
    _orders(caller.account, 5)
    _orders(stranger.account, 2)
    path = f"/api/v1/accounts/{caller.account.id}/orders"
    first = caller.get(f"{path}?limit=3").json
    assert [o["client_order_id"] for o in first["items"]] == [f"test-{caller.account.id}-{n}" for n in (4, 3, 2)]
    assert first["next_cursor"]
    second = caller.get(f"{path}?limit=3&cursor={first['next_cursor']}").json
    assert [o["client_order_id"] for o in second["items"]] == [f"test-{caller.account.id}-{n}" for n in (1, 0)]
    assert second["next_cursor"] is None
    assert all(o["analysis_id"] is None and o["average_fill_price"] is None for o in second["items"])

    eth = caller.get(f"{path}?symbol=ETH/USDT").json["items"]
    assert [o["client_order_id"][-1] for o in eth] == ["3", "1"]
    [rejected] = caller.get(f"{path}?status=rejected").json["items"]
    assert (rejected["status"], rejected["error_code"]) == ("rejected", "INSUFFICIENT_FUNDS")


def test_trades_come_in_pages(caller):
    _orders(caller.account, 1)
    order = db.session.scalars(select(Order)).one()
    for number in range(3):
        db.session.add(
            Trade(
                account_id=caller.account.id,
                order_id=order.id,
                symbol="BTC/USDT",
                side=OrderSide.BUY,
                quantity=Decimal("0.001"),
                price=Decimal(40000 + number),
                fee=Decimal("0.000001"),
                fee_currency="BTC",
            )
        )
    db.session.commit()
    path = f"/api/v1/accounts/{caller.account.id}/trades"
    first = caller.get(f"{path}?limit=2").json
    assert [t["price"] for t in first["items"]] == ["40002", "40001"]
    assert first["items"][0]["fee_currency"] == "BTC" and first["items"][0]["fee_value"] is None
    second = caller.get(f"{path}?limit=2&cursor={first['next_cursor']}").json
    assert ([t["price"] for t in second["items"]], second["next_cursor"]) == (["40000"], None)


def test_bad_list_input_is_422_naming_the_field(caller):
    path = f"/api/v1/accounts/{caller.account.id}"
    for query, field in (
        ("/orders?status=filled", "status"),
        ("/orders?limit=201", "limit"),
        ("/orders?cursor=nope", "cursor"),
        ("/orders?colour=red", "colour"),
        ("/trades?symbol=" + "X" * 33, "symbol"),
    ):
        response = caller.get(path + query)
        assert response.status_code == 422, query
        assert response.json["error"]["details"]["field"] == field, query
    for route in ROUTES:
        response = caller.get(f"/api/v1/accounts/99999999999{route}")
        assert response.status_code == 422 and response.json["error"]["details"]["field"] == "account_id"


def test_kill_switch_then_resume(caller):
    path = f"/api/v1/accounts/{caller.account.id}"
    response = caller.post(f"{path}/kill-switch", json={"reason": "exchange incident"})
    assert response.status_code == 200
    assert response.json == {
        "account_id": caller.account.id,
        "trading_state": "HALTED",
        "state_reason": "kill switch: exchange incident",
    }
    listed = caller.get("/api/v1/accounts").json["items"][0]
    assert (listed["trading_state"], listed["state_reason"]) == ("HALTED", "kill switch: exchange incident")
    again = caller.post(f"{path}/kill-switch", json={"reason": "twice"})
    assert again.status_code == 409 and again.json["error"]["details"]["field"] == "trading_state"

    response = caller.post(f"{path}/resume")
    assert response.status_code == 200
    body = response.json
    assert (body["trading_state"], body["state_reason"]) == ("ACTIVE", None)
    assert (body["previous_state"], body["previous_reason"]) == ("HALTED", "kill switch: exchange incident")
    assert (as_decimal(body["peak_equity"]), body["quote_currency"]) == (100, "USDT")
    db.session.expire_all()
    assert db.session.get(Account, caller.account.id).trading_state is TradingState.ACTIVE
    assert caller.post(f"{path}/resume").status_code == 409


def test_the_kill_switch_needs_the_trade_scope_and_a_reason(api_app, caller):
    reader = ApiClient(api_app, issue(caller.user, ["read"]))
    path = f"/api/v1/accounts/{caller.account.id}"
    for route in ("/kill-switch", "/resume"):
        response = reader.post(path + route, json={"reason": "because"})
        assert response.status_code == 403
        assert response.json["error"]["details"]["required_scope"] == "trade"
    for body, field in (
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 201}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "ok", "also": 1}, "also"),
    ):
        response = caller.post(f"{path}/kill-switch", json=body)
        assert response.status_code == 422, body
        assert response.json["error"]["details"]["field"] == field, body
    db.session.expire_all()
    assert db.session.get(Account, caller.account.id).trading_state is TradingState.ACTIVE


def test_without_a_key_every_route_is_401(api_app, caller):
    anonymous = ApiClient(api_app, None)
    for route in ROUTES:
        assert anonymous.get(f"/api/v1/accounts/{caller.account.id}{route}").status_code == 401
    assert anonymous.get("/api/v1/accounts").status_code == 401
    assert anonymous.get("/api/v1/kill-switch").status_code == 401
    assert anonymous.post(f"/api/v1/accounts/{caller.account.id}/resume").status_code == 401


def test_someone_elses_account_is_404_on_every_route(caller, stranger):
    theirs = f"/api/v1/accounts/{stranger.account.id}"
    responses = [caller.get(theirs + route) for route in ROUTES]
    responses.append(caller.post(theirs + "/kill-switch", json={"reason": "mine now"}))
    db.session.get(Account, stranger.account.id).trading_state = TradingState.HALTED
    db.session.commit()
    responses.append(caller.post(theirs + "/resume"))
    for response in responses:
        assert response.status_code == 404
        assert response.json["error"]["details"]["field"] == "account_id"
    missing = caller.get("/api/v1/accounts/2000000000")
    assert missing.status_code == 404 and missing.json["error"]["message"] == "no account #2000000000"
    db.session.expire_all()
    assert db.session.get(Account, stranger.account.id).trading_state is TradingState.HALTED


def test_the_global_kill_switch_state_is_readable(api_app, caller):
    reader = ApiClient(api_app, issue(caller.user, ["read"]))
    assert reader.get("/api/v1/kill-switch").json == {"engaged": False, "reason": None, "by": None, "since": None}
    since = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    kill_switch.engage_global(db.session, "exchange incident", "ops", since)
    db.session.commit()
    response = reader.get("/api/v1/kill-switch")
    assert response.status_code == 200
    assert response.json == {
        "engaged": True,
        "reason": "exchange incident",
        "by": "ops",
        "since": "2024-05-01T09:30:00+00:00",
    }
    no_scope = ApiClient(api_app, issue(caller.user, ["analyze"]))
    assert no_scope.get("/api/v1/kill-switch").status_code == 403
    assert no_scope.get("/api/v1/accounts").status_code == 403
