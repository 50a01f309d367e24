"""/orders and /trades on SQLite and PostgreSQL: every account's orders and fills with their fees in their own
currency, filters from the query string (a bad one is a one-line message naming the field and the value, 400),
keyset pages, CSV downloads with ISO times and exact decimals, realized PnL and fee totals, sign-in, and another
user's account as a filter answering 404."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.extensions import db
from app.models import Order, Position, PositionStatus, Trade
from exchanges.orders import OrderSide, OrderStatus, OrderType
from tests import factories

BOUGHT_AT = datetime(2024, 1, 12, 17, tzinfo=UTC)
SOLD_AT = datetime(2024, 1, 13, 9, tzinfo=UTC)


def order(account, side=OrderSide.BUY, status=OrderStatus.CLOSED, symbol="BTC/USDT", quantity="0.00084", **fields):
    row = Order(
        account_id=account.id,
        client_order_id=f"web-{factories.sequence()}",
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET,
        status=status,
        quantity=Decimal(quantity),
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def trade(account, placed, position, side, price, fee, fee_currency, at, **fields):
    row = Trade(
        account_id=account.id,
        order_id=placed.id,
        position_id=position.id,
        symbol=placed.symbol,
        side=side,
        quantity=placed.filled_quantity,
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency=fee_currency,
        executed_at=at,
        **fields,
    )
    db.session.add(row)
    db.session.flush()
    return row


def history(user):
    """A closed BTC/USDT round trip (fees in USDT, then in BNB), an open ETH/USDT position and a rejected order."""
    [account] = user.accounts
    closed = Position(
        account_id=account.id,
        symbol="BTC/USDT",
        status=PositionStatus.CLOSED,
        quantity=Decimal(0),
        entry_price=Decimal("43624"),
        cost_basis=Decimal(0),
        realized_pnl=Decimal("1.5"),
        fees_paid=Decimal("0.072"),
        dust_quantity=Decimal("0.00000009"),
        dust_value=Decimal("0.004"),
        opened_at=BOUGHT_AT,
        closed_at=SOLD_AT,
    )
    held = Position(
        account_id=account.id,
        symbol="ETH/USDT",
        quantity=Decimal("0.01"),
        entry_price=Decimal("2500"),
        cost_basis=Decimal("25.025"),
        stop_loss=Decimal("2400"),
        take_profit=Decimal("2700"),
        opened_at=SOLD_AT,
    )
    db.session.add_all([closed, held])
    db.session.flush()
    buy = order(account, filled_quantity=Decimal("0.00084"), average_fill_price=Decimal("43624"), fee=Decimal("0.036"))
    buy.fee_currency = "USDT"
    sell = order(account, OrderSide.SELL, filled_quantity=Decimal("0.00084"), average_fill_price=Decimal("45500"))
    sell.fee, sell.fee_currency = Decimal("0.0001"), "BNB"
    trade(account, buy, closed, OrderSide.BUY, "43624", "0.036", "USDT", BOUGHT_AT, fee_value=Decimal("0.036"))
    trade(
        account, sell, closed, OrderSide.SELL, "45500", "0.0001", "BNB", SOLD_AT,
        fee_value=Decimal("0.036"), realized_pnl=Decimal("1.5"),
    )  # fmt: skip
    eth = order(
        account, symbol="ETH/USDT", quantity="0.01", filled_quantity=Decimal("0.01"), average_fill_price=Decimal("2500")
    )
    trade(account, eth, held, OrderSide.BUY, "2500", "0.025", "USDT", SOLD_AT, fee_value=Decimal("0.025"))
    rejected = order(account, status=OrderStatus.REJECTED, error_code="INSUFFICIENT_FUNDS", error_message="no cash")
    db.session.commit()
    return account, buy, sell, rejected, closed, held


def test_orders_need_sign_in(client):
    for path in ("/orders", "/trades", "/orders.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_orders_show_every_order_with_its_fee_currency(signed_in, ada, stranger):
    _, buy, _, rejected, *_ = history(ada)
    page = signed_in.get("/orders").get_data(as_text=True)
    assert f'data-testid="order-{buy.id}"' in page and f'data-testid="order-{rejected.id}"' in page
    assert "43,624.00 USDT" in page
    assert "0.03600 USDT" in page and "0.0001000 BNB" in page  # each fee in its own currency
    assert "INSUFFICIENT_FUNDS: no cash" in page
    assert "Eve paper" not in page


def test_order_filters_narrow_and_keep_what_was_typed(signed_in, ada):
    _, buy, sell, rejected, *_ = history(ada)
    page = signed_in.get("/orders?status=rejected").get_data(as_text=True)
    assert f'order-{rejected.id}"' in page and f'order-{buy.id}"' not in page
    page = signed_in.get("/orders?side=sell&symbol=btc/usdt").get_data(as_text=True)
    assert f'order-{sell.id}"' in page and f'order-{buy.id}"' not in page
    page = signed_in.get("/orders?since=2999-01-01").get_data(as_text=True)
    assert "No orders match these filters." in page


def test_a_bad_filter_is_a_message_naming_the_field_and_value(signed_in, ada):
    history(ada)
    cases = {
        "/orders?since=2024-13-01": ("since", 'From (UTC day) must be a day as YYYY-MM-DD, got "2024-13-01"'),
        "/orders?status=lost": (
            "status",
            'Status must be one of pending, open, closed, canceled, expired, rejected, got "lost"',
        ),
        "/trades?side=long": ("side", 'Side must be one of buy, sell, got "long"'),
        "/trades?symbol=BTCUSDT": ("symbol", 'Symbol must look like BTC/USDT, got "BTCUSDT"'),
        "/orders?account=abc": ("account", 'Account must be an account number, got "abc"'),
        "/orders?since=2024-02-01&until=2024-01-01": (
            "since",
            "From (UTC day) 2024-02-01 is after through (UTC day) 2024-01-01",
        ),
        "/orders?before=x": ("before", 'The page to start from must be a row number, got "x"'),
    }
    for path, (field, message) in cases.items():
        response = signed_in.get(path)
        assert response.status_code == 400, path
        page = response.get_data(as_text=True)
        assert message.replace('"', "&#34;") in page, path
        marked = re.findall(r'id="f-(\w+)" name="\w+" aria-invalid="true"', page)
        assert marked == ([] if field == "before" else [field]), path
    page = signed_in.get("/trades?symbol=BTCUSDT").get_data(as_text=True)
    assert 'value="BTCUSDT"' in page  # what the user typed stays in the input


def test_another_users_account_as_a_filter_is_404(signed_in, ada, stranger):
    [theirs] = stranger.accounts
    for path in ("/orders", "/trades", "/orders.csv", "/trades.csv"):
        assert signed_in.get(f"{path}?account={theirs.id}").status_code == 404


def test_orders_come_in_pages(signed_in, ada):
    [account] = ada.accounts
    placed = [order(account, status=OrderStatus.CANCELED) for _ in range(52)]
    db.session.commit()
    first = signed_in.get("/orders").get_data(as_text=True)
    assert f'order-{placed[-1].id}"' in first and f'order-{placed[1].id}"' not in first
    assert f"/orders?before={placed[2].id}" in first
    second = signed_in.get(f"/orders?before={placed[2].id}").get_data(as_text=True)
    assert f'order-{placed[0].id}"' in second and f'order-{placed[1].id}"' in second
    assert f'order-{placed[2].id}"' not in second and "Older orders" not in second


def rows_of(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_orders_csv_has_iso_times_exact_decimals_and_fee_currency(signed_in, ada):
    _, _, sell, *_ = history(ada)
    response = signed_in.get("/orders.csv?side=sell")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="steadyhand-orders-') and disposition.endswith('.csv"')
    [row] = rows_of(response)
    assert row["order_id"] == str(sell.id) and row["account"] == "Ada paper"
    assert (row["fee"], row["fee_currency"], row["quote_currency"]) == ("0.0001", "BNB", "USDT")
    assert (row["quantity"], row["average_fill_price"]) == ("0.00084", "45500")
    assert datetime.fromisoformat(row["placed_at"]).utcoffset() == timedelta(0)
    assert rows_of(signed_in.get("/orders?format=csv")) == rows_of(signed_in.get("/orders.csv"))


def test_trades_show_fills_and_totals_of_pnl_and_fees(signed_in, ada):
    history(ada)
    page = signed_in.get("/trades").get_data(as_text=True)
    assert "45,500.00 USDT" in page and "+1.50 USDT" in page
    assert "0.0001000 BNB" in page and "worth 0.03600 USDT" in page
    totals = page[page.index('data-testid="trade-totals"') :]
    assert "Realized PnL, Ada paper" in totals and "over 1 closing fill," in totals
    assert "Fees paid in BNB, Ada paper" in totals and "Fees paid in USDT, Ada paper" in totals
    assert "0.06100 USDT" in totals  # 0.036 + 0.025
    page = signed_in.get("/trades?side=buy&symbol=ETH/USDT").get_data(as_text=True)
    assert "2,500.00 USDT" in page and "45,500.00 USDT" not in page


def test_trades_csv(signed_in, ada):
    history(ada)
    response = signed_in.get("/trades?format=csv&symbol=BTC/USDT")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="steadyhand-trades-')
    rows = rows_of(response)
    assert [(r["side"], r["price"], r["fee"], r["fee_currency"], r["fee_value"]) for r in rows] == [
        ("sell", "45500", "0.0001", "BNB", "0.036"),
        ("buy", "43624", "0.036", "USDT", "0.036"),
    ]
    assert rows[0]["realized_pnl"] == "1.5" and rows[0]["executed_at"] == "2024-01-13T09:00:00+00:00"


def test_empty_lists_say_what_to_do_next(signed_in):
    assert "No orders yet." in signed_in.get("/orders").get_data(as_text=True)
    assert "No trades yet." in signed_in.get("/trades").get_data(as_text=True)
