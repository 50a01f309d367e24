"""The account book with fills as Binance reports them: a buy fee taken in BTC leaves dust, a fee paid in BNB is
valued at BNB/USDT (or flagged unvalued), never booked as if it were USDT. Numbers: BTC/USDT, 0.00001 BTC step,
5 USDT minimum notional, 0.1% fee (issue 9, items 1 and 3)."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.persistence.markets import bundled_catalog
from exchanges.base import OrderState
from exchanges.book import AccountBook, is_dust
from exchanges.orders import OrderSide, OrderStatus, OrderType
from tests.conftest import PROJECT_ROOT

D = Decimal
RULES = bundled_catalog(PROJECT_ROOT / "data", "binance").rules("BTC/USDT")
BOUGHT_AT = datetime(2024, 1, 12, 17, tzinfo=UTC)
SOLD_AT = datetime(2024, 1, 12, 23, tzinfo=UTC)


def filled(client_order_id, side, quantity, price, fee, fee_currency, at):
    return OrderState(
        client_order_id,
        f"x-{client_order_id}",
        "BTC/USDT",
        side,
        OrderType.MARKET,
        OrderStatus.CLOSED,
        D(quantity),
        D(quantity),
        D(price),
        D(fee),
        fee_currency,
        at,
    )


def binance_buy(book, fee="0.00000084", fee_currency="BTC", fee_price=None):
    state = filled("sh1d1", OrderSide.BUY, "0.00084", "43630", fee, fee_currency, BOUGHT_AT)
    if fee_price is None:
        return book.record_fill(state, RULES)
    return book.record_fill(state, RULES, fee_price)


def test_the_remainder_after_a_btc_fee_is_dust_and_closes_the_position():
    book = AccountBook("USDT", D(100), enforce_funds=False)
    binance_buy(book)
    assert book.positions["BTC/USDT"].quantity == D("0.00083916")
    # The stop exit can sell whole steps only: 0.00083 BTC at the stop 42,434.55, fee 0.1% in USDT.
    sell = book.record_fill(
        filled("sh1p1x1", OrderSide.SELL, "0.00083", "42434.55", "0.03522067650", "USDT", SOLD_AT), RULES
    )
    assert "BTC/USDT" not in book.positions
    # 0.00000916 BTC remain: no whole step, worth 0.39 USDT at the exit price.
    assert (sell.dust_quantity, sell.dust_value) == (D("0.00000916"), D("0.3887004780"))
    # The whole cost (36.6492 USDT paid, the BTC fee included) is measured against the proceeds: the dust is written
    # off, not left as equity that can never be sold.
    proceeds = D("0.00083") * D("42434.55") - D("0.0352206765")
    assert sell.realized_pnl == proceeds - D("36.6492")
    assert book.cash == D(100) - D("36.6492") + proceeds


def test_a_remainder_worth_a_whole_order_is_not_dust():
    book = AccountBook("USDT", D(100), enforce_funds=False)
    binance_buy(book)
    sell = book.record_fill(filled("s1", OrderSide.SELL, "0.0007", "43000", "0", "USDT", SOLD_AT), RULES)
    assert sell.dust_quantity == 0
    # 0.00013916 left, 0.00013 sellable = 5.59 USDT >= 5: still a position
    assert book.positions["BTC/USDT"].quantity == D("0.00013916")


def test_a_fee_paid_in_bnb_is_valued_at_bnb_usdt_not_booked_as_usdt():
    book = AccountBook("USDT", D(100), enforce_funds=False)
    asked = []

    def bnb_price(currency):
        asked.append(currency)
        return D("300.20")

    fill = binance_buy(book, fee="0.00009162", fee_currency="BNB", fee_price=bnb_price)
    assert asked == ["BNB"]
    assert (fill.fee_charge.amount, fill.fee_charge.currency, fill.fee_charge.valued) == (D("0.00009162"), "BNB", True)
    # 0.00009162 BNB x 300.20 = 0.027504324 USDT, about 300 times the 0.00009162 a BNB amount labelled USDT would be.
    assert fill.fee == D("0.0275043240")
    # The BTC bought is all held (the fee came out of BNB) and its cost includes the valued fee.
    assert book.positions["BTC/USDT"].quantity == D("0.00084")
    assert book.positions["BTC/USDT"].cost_basis == D("0.00084") * D("43630") + D("0.027504324")


def test_a_fee_that_cannot_be_valued_is_flagged_not_guessed():
    book = AccountBook("USDT", D(100), enforce_funds=False)
    fill = binance_buy(book, fee="0.00009162", fee_currency="BNB", fee_price=lambda currency: None)
    assert (fill.fee, fill.fee_charge.valued, fill.fee_charge.amount) == (D(0), False, D("0.00009162"))
    assert book.cash == D(100) - D("0.00084") * D("43630")


@given(
    held_steps=st.integers(min_value=1, max_value=10**6),
    extra=st.integers(min_value=0, max_value=999),
    price=st.decimals(min_value=D("0.01"), max_value=D(200_000), places=2),
)
def test_dust_is_exactly_what_no_order_could_sell(held_steps, extra, price):
    quantity = held_steps * RULES.amount_step + extra * RULES.amount_step / 1000
    sellable = held_steps * RULES.amount_step
    refused = sellable < RULES.min_amount or sellable * price < RULES.min_notional
    assert is_dust(quantity, price, RULES) is refused
