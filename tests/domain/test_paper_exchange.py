"""The paper exchange and its book: the real market's rules, fees, slippage, idempotent client order ids."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.persistence.markets import bundled_catalog as market_catalog
from exchanges.base import InsufficientFundsError, InvalidOrderError, OrderRequest
from exchanges.book import AccountBook
from exchanges.orders import OrderSide, OrderStatus, OrderType
from exchanges.paper import PaperExchange
from tests.conftest import PROJECT_ROOT

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
CATALOG = market_catalog(PROJECT_ROOT / "data", "binance")


def exchange(cash="100", price="60000", slippage_bps="0", fee_rate=None):
    prices = {"BTC/USDT": Decimal(price), "ETH/USDT": Decimal("3000")}
    book = AccountBook("USDT", Decimal(cash))
    paper = PaperExchange(
        book, CATALOG, prices.__getitem__, lambda: NOW, fee_rate=fee_rate, slippage_bps=Decimal(slippage_bps)
    )
    return paper, prices


def place(paper, request):
    """What the app and the backtest engine do with any exchange: place, then record the reported fill."""
    state = paper.create_order(request)
    paper.book.record_fill(state, paper.market_rules(request.symbol))
    return state


def order(side, amount, client_id="c1", symbol="BTC/USDT"):
    return OrderRequest(symbol, side, OrderType.MARKET, Decimal(amount), client_id)


def test_a_round_trip_pays_the_fee_twice_and_reports_it_as_realized_loss():
    paper, _ = exchange()
    bought = place(paper, order(OrderSide.BUY, "0.00083", "b1"))
    # 0.00083 BTC x 60,000 = 49.80 USDT, fee 0.1% = 0.0498
    assert (bought.status, bought.filled, bought.average_price, bought.fee) == (
        OrderStatus.CLOSED,
        Decimal("0.00083"),
        Decimal("60000"),
        Decimal("0.0498"),
    )
    assert paper.book.cash == Decimal("100") - Decimal("49.80") - Decimal("0.0498")
    assert paper.fetch_balances()["BTC"].free == Decimal("0.00083")
    place(paper, order(OrderSide.SELL, "0.00083", "s1"))
    sell = paper.book.fills[-1]
    assert sell.realized_pnl == Decimal("-0.0996")
    assert paper.book.cash == Decimal("100") - Decimal("0.0996")
    assert paper.book.positions == {}


def test_the_same_client_order_id_never_fills_twice():
    paper, _ = exchange()
    first = place(paper, order(OrderSide.BUY, "0.0001", "same"))
    second = place(paper, order(OrderSide.BUY, "0.0001", "same"))
    assert first == second
    assert len(paper.book.fills) == 1


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (order(OrderSide.BUY, "0.00005"), InvalidOrderError, "order value 3.00 is below the minimum 5.00 USDT"),
        (order(OrderSide.BUY, "0.000123"), InvalidOrderError, "not a multiple of the step 0.00001"),
        (order(OrderSide.BUY, "0.002"), InsufficientFundsError, "costs 120.12000000 USDT with fees, only 100"),
        (order(OrderSide.SELL, "0.001"), InsufficientFundsError, "cannot sell 0.001 BTC/USDT, holding 0"),
    ],
)
def test_orders_a_real_market_would_refuse_are_refused_and_change_nothing(request_, error, message):
    paper, _ = exchange()
    with pytest.raises(error, match=message):
        place(paper, request_)
    assert paper.book.cash == Decimal(100) and paper.book.fills == [] and paper.orders == {}


def test_slippage_works_against_the_trader_and_lands_on_the_price_grid():
    paper, prices = exchange(slippage_bps="5", cash="1000")
    prices["BTC/USDT"] = Decimal("60000.01")
    buy = place(paper, order(OrderSide.BUY, "0.001", "b"))
    assert buy.average_price == Decimal("60030.02")  # 60000.01 x 1.0005 = 60030.015005, rounded up to 0.01
    sell = place(paper, order(OrderSide.SELL, "0.001", "s"))
    assert sell.average_price == Decimal("59970.00")  # 60000.01 x 0.9995 = 59970.009995, rounded down


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.integers(min_value=10, max_value=300),  # amount in steps of 0.00001 BTC
            st.integers(min_value=20_000, max_value=90_000),  # price
        ),
        max_size=25,
    )
)
def test_money_is_conserved_cash_plus_cost_basis_minus_realized_is_constant(trades):
    paper, prices = exchange(cash="1000")
    for index, (is_buy, steps, price) in enumerate(trades):
        prices["BTC/USDT"] = Decimal(price)
        side = OrderSide.BUY if is_buy else OrderSide.SELL
        try:
            place(paper, order(side, Decimal(steps) * Decimal("0.00001"), f"o{index}"))
        except (InsufficientFundsError, InvalidOrderError):
            continue
    book = paper.book
    basis = sum((p.cost_basis for p in book.positions.values()), Decimal(0))
    realized = sum((f.realized_pnl for f in book.fills if f.realized_pnl is not None), Decimal(0))
    assert book.cash + basis - realized == Decimal(1000)
    assert book.cash >= 0
    assert all(p.quantity > 0 for p in book.positions.values())
