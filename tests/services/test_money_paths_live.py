"""Money paths on a live Binance account (ccxt against Binance's recorded wire format), on SQLite and PostgreSQL:
dust after a fee taken in BTC, an exit Binance refuses, a fee paid in BNB (issue 9, items 1-3).

rules:rsi_reversion on BTC/USDT 1h: BUY at 16:00 (stop 42,434.55), the stop is touched on the 22:00 bar, and the
rules BUY again at 2024-01-13 00:00.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import AuditEvent, Order, Position, PositionStatus, Trade
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.markets import refresh_markets
from exchanges.orders import OrderSide, OrderStatus
from tests import factories
from tests.conftest import PROJECT_ROOT

D = Decimal
RECORDINGS = PROJECT_ROOT / "tests" / "recordings" / "binance"
ORDER_URL = re.compile(r"https://api\.binance\.com/api/v3/order(\?.*)?$")
TICKER_URL = re.compile(r"https://api\.binance\.com/api/v3/ticker/24hr\?symbol=BNBUSDT")
EXCHANGE_INFO_URL = "https://api.binance.com/api/v3/exchangeInfo"
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)
STOP_BAR = datetime(2024, 1, 12, 22, tzinfo=UTC)
STOP = D("42434.55")
HOUR = timedelta(hours=1)


class FakeBinance:
    """Answers POST /api/v3/order like Binance: a FILLED market order at `price` and time `at` (the close of the bar
    analysed: the replayed history is the exchange's present), its commission as scripted; `refuse` holds error
    bodies to answer the next orders with instead (400)."""

    def __init__(self, price: str = "43630.00", at: datetime = BUY_BAR + HOUR) -> None:
        self.price = price
        self.at = at
        self.buy_commission = ("BTC", None)  # (asset, amount or None for 0.1% of the quantity)
        self.refuse: list[dict] = []
        self.orders: list[dict[str, str]] = []

    def __call__(self, request):
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        params = {name: values[0] for name, values in parse_qs(raw).items()}
        self.orders.append(params)
        if self.refuse:
            return 400, {}, json.dumps(self.refuse.pop(0))
        quantity = D(params["quantity"])
        price = D(self.price)
        if params["side"] == "BUY":
            asset, amount = self.buy_commission
            commission = amount or str(quantity * D("0.001"))
        else:
            asset, commission = "USDT", str(quantity * price * D("0.001"))
        body = json.loads((RECORDINGS / "order_create_full_market_buy.json").read_text())
        body.update(
            clientOrderId=params["newClientOrderId"],
            transactTime=int(self.at.timestamp() * 1000),
            workingTime=int(self.at.timestamp() * 1000),
            side=params["side"],
            origQty=params["quantity"],
            executedQty=params["quantity"],
            cummulativeQuoteQty=str(quantity * price),
            fills=[
                {"price": self.price, "qty": params["quantity"], "commission": commission, "commissionAsset": asset}
            ],
        )
        return 200, {}, json.dumps(body)


@pytest.fixture
def binance():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance()
        mock.add_callback(responses.POST, ORDER_URL, callback=fake)
        yield mock, fake


@pytest.fixture
def live(app):
    user = factories.user(db.session)
    account = factories.live_account(db.session, user, label="main")
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, account


def analyse(user, account, until, execute=True):
    request = AnalysisRequest(
        user_id=user.id,
        symbol="BTC/USDT",
        timeframe="1h",
        signals="rules:rsi_reversion",
        account_id=account.id,
        until=until,
        execute=execute,
    )
    return run_analysis(
        db.session, current_settings(), request, signal_services(db.session, current_settings(), user.id)
    )


def position():
    db.session.expire_all()
    return db.session.scalars(select(Position).order_by(Position.id.desc())).first()


def events(name):
    return [e.message for e in db.session.scalars(select(AuditEvent).where(AuditEvent.event == name))]


def test_dust_left_by_a_btc_fee_closes_the_position_and_never_blocks_the_next_buy(live, binance):
    user, account = live
    _, fake = binance
    analyse(user, account, BUY_BAR)
    assert position().quantity == D("0.00083916")  # 0.00084 bought, Binance kept 0.00000084 BTC

    fake.price, fake.at = "42434.55", STOP_BAR + HOUR
    result = analyse(user, account, STOP_BAR)
    sell = fake.orders[1]
    assert (sell["side"], sell["quantity"]) == ("SELL", "0.00083")  # whole steps only
    closed = db.session.scalars(select(Position).order_by(Position.id)).first()
    assert closed.status is PositionStatus.CLOSED
    # 0.00000916 BTC remain: not one 0.00001 step, worth 0.00000916 x 42,434.55 = 0.39 USDT.
    assert (closed.dust_quantity, closed.dust_value) == (D("0.00000916"), D("0.3887004780"))
    assert any("0.00000916 BTC dust left (0.39 USDT), written off" in note for note in result.trade.notes)
    # The same bar's BUY (confidence 65) is not refused ALREADY_IN_POSITION: the dust holds nothing open.
    codes = [reason["code"] for reason in result.trade.decision.reasons]
    assert result.trade.decision.approved and "ALREADY_IN_POSITION" not in codes, codes
    assert (result.trade.order.status, fake.orders[2]["side"]) == (OrderStatus.CLOSED, "BUY")
    assert position().status is PositionStatus.OPEN


def test_a_refused_exit_is_marked_retried_with_a_new_client_order_id_and_never_crashes(live, binance):
    user, account = live
    _, fake = binance
    account.risk_settings = {"risk_per_trade_pct": "0.12"}
    db.session.commit()
    analyse(user, account, BUY_BAR)
    # Sized so the stop exit stays sellable after the BTC fee: 0.00013 (0.00012 would leave 4.67 USDT at the stop).
    assert fake.orders[0]["quantity"] == "0.00013"
    assert position().quantity == D("0.00012987")

    fake.price, fake.at = "42434.55", STOP_BAR + HOUR
    fake.refuse = [json.loads((RECORDINGS / "errors" / "filter_failure_notional_400.json").read_text())]
    result = analyse(user, account, STOP_BAR)
    held = position()
    assert (held.status, held.exit_error_code, held.exit_attempts) == (PositionStatus.OPEN, "INVALID_ORDER", 1)
    assert any("exit failed (INVALID_ORDER)" in note for note in result.trade.notes)
    [failed] = events("position.exit_failed")
    assert failed.startswith("BTC/USDT: INVALID_ORDER: ")

    fake.price, fake.at = "42700.00", STOP_BAR + 2 * HOUR
    analyse(user, account, datetime(2024, 1, 12, 23, tzinfo=UTC))
    orders = db.session.scalars(select(Order).where(Order.side == OrderSide.SELL).order_by(Order.id)).all()
    assert [(o.client_order_id, o.status) for o in orders] == [
        (f"sh{account.id}p{held.id}x1", OrderStatus.REJECTED),
        (f"sh{account.id}p{held.id}x2", OrderStatus.CLOSED),
    ]
    sent = [o["newClientOrderId"] for o in fake.orders if o["side"] == "SELL"]
    assert sent == [o.client_order_id for o in orders]
    closed = db.session.get(Position, held.id)
    assert (closed.status, closed.exit_error_code) == (PositionStatus.CLOSED, None)
    assert closed.dust_quantity == D("0.00000987")  # 0.00012987 held, 0.00012 sold


def refresh_with_bnb(mock):
    mock.get(EXCHANGE_INFO_URL, json=json.loads((RECORDINGS / "exchangeInfo_spot.json").read_text()))
    refresh_markets(db.session, current_settings(), "binance")
    db.session.commit()


def test_a_fee_paid_in_bnb_is_valued_at_bnb_usdt(live, binance):
    user, account = live
    mock, fake = binance
    refresh_with_bnb(mock)
    ticker = json.loads((RECORDINGS / "ticker_24hr_BTCUSDT.json").read_text())
    ticker.update(symbol="BNBUSDT", lastPrice="300.20000000", bidPrice="300.10000000", askPrice="300.20000000")
    mock.get(TICKER_URL, json=ticker)
    fake.buy_commission = ("BNB", "0.00009162")

    analyse(user, account, BUY_BAR)
    trade = db.session.scalars(select(Trade)).one()
    # 0.00009162 BNB x 300.20 = 0.0275 USDT; booked as 0.00009162 "USDT" it would be about 300 times too low.
    assert (trade.fee, trade.fee_currency, trade.fee_value) == (D("0.00009162"), "BNB", D("0.027504324"))
    held = position()
    assert (held.quantity, held.fees_paid, held.fees_unvalued) == (D("0.00084"), D("0.027504324"), False)
    assert held.cost_basis == D("0.00084") * D("43630") + D("0.027504324")


def test_a_fee_that_cannot_be_valued_is_flagged_on_the_trade_and_the_position(live, binance):
    user, account = live
    _, fake = binance
    fake.buy_commission = ("BNB", "0.00009162")  # the stored markets list no BNB/USDT: no price to value it at

    analyse(user, account, BUY_BAR)
    trade = db.session.scalars(select(Trade)).one()
    assert (trade.fee, trade.fee_currency, trade.fee_value) == (D("0.00009162"), "BNB", None)
    held = position()
    assert (held.fees_paid, held.fees_unvalued) == (D(0), True)
