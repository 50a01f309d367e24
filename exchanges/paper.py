"""The paper exchange: fills market orders at a supplied price with fees and slippage, under the real market's
precision and minimums. Like any exchange it only reports fills; the caller records them in the account's book."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from exchanges.base import (
    Balance,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRequest,
    OrderState,
    Ticker,
)
from exchanges.book import AMOUNT_QUANTUM, AccountBook
from exchanges.candles import Candle
from exchanges.markets import MarketCatalog, MarketRules
from exchanges.orders import OrderSide, OrderStatus, OrderType

BPS = Decimal(10_000)


class PaperExchange:
    """An `Exchange` over an account's `AccountBook`. Orders fill at once at `price_of(symbol)`, worsened by slippage.

    The book is read for funds and holdings, never written: the caller records the reported fill with
    `AccountBook.record_fill`, exactly as it does for a live exchange.
    """

    id = "paper"

    def __init__(
        self,
        book: AccountBook,
        markets: MarketCatalog,
        price_of: Callable[[str], Decimal],
        clock: Callable[[], datetime],
        fee_rate: Decimal | None = None,
        slippage_bps: Decimal = Decimal(0),
        candles: Callable[[str, str, int, datetime], list[Candle]] | None = None,
    ) -> None:
        self.book = book
        self._markets = markets
        self._price_of = price_of
        self._clock = clock
        self._fee_rate = fee_rate
        self._slippage = slippage_bps / BPS
        self._candles = candles
        self.orders: dict[str, OrderState] = {}  # by client order id: the same id never fills twice

    def market_rules(self, symbol: str) -> MarketRules:
        return self._markets.rules(symbol)

    def fetch_candles(self, symbol: str, timeframe: str, limit: int, now: datetime) -> list[Candle]:
        if self._candles is None:
            raise InvalidOrderError("paper: this paper exchange has no candle source")
        return self._candles(symbol, timeframe, limit, now)

    def fetch_ticker(self, symbol: str) -> Ticker:
        price = self._price_of(symbol)
        return Ticker(symbol, price, price, price, self._clock())

    def fetch_balances(self) -> dict[str, Balance]:
        balances = {self.book.quote_currency: Balance(self.book.quote_currency, self.book.cash, Decimal(0))}
        for symbol, position in self.book.positions.items():
            base = self.market_rules(symbol).base
            balances[base] = Balance(base, position.quantity, Decimal(0))
        return balances

    def create_order(self, request: OrderRequest) -> OrderState:
        known = self.orders.get(request.client_order_id)
        if known is not None:
            return known  # the same client order id never fills twice
        if request.order_type is not OrderType.MARKET:
            raise InvalidOrderError("paper: only market orders are supported")
        rules = self.market_rules(request.symbol)
        price = self._fill_price(request.side, self._price_of(request.symbol), rules)
        _check_rules(request, price, rules)
        fee = (request.amount * price * self._fee(rules)).quantize(AMOUNT_QUANTUM)
        self.book.check_funds(request.side, request.symbol, request.amount, price, fee)
        at = self._clock()
        state = OrderState(
            client_order_id=request.client_order_id,
            exchange_order_id=f"paper-{request.client_order_id}",
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            status=OrderStatus.CLOSED,
            amount=request.amount,
            filled=request.amount,
            average_price=price,
            fee=fee,
            fee_currency=self.book.quote_currency,
            updated_at=at,
        )
        self.orders[request.client_order_id] = state
        return state

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderState | None:
        return self.orders.get(client_order_id)

    def cancel_order(self, client_order_id: str, symbol: str) -> OrderState:
        order = self.orders.get(client_order_id)
        if order is None:
            raise OrderNotFoundError(f"paper: no order {client_order_id}")
        if order.status is OrderStatus.OPEN:
            order = replace(order, status=OrderStatus.CANCELED, updated_at=self._clock())
            self.orders[client_order_id] = order
        return order

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return [o for o in self.orders.values() if o.status is OrderStatus.OPEN and symbol in (None, o.symbol)]

    def _fee(self, rules: MarketRules) -> Decimal:
        return self._fee_rate if self._fee_rate is not None else rules.taker_fee

    def _fill_price(self, side: OrderSide, price: Decimal, rules: MarketRules) -> Decimal:
        """Slippage always works against the trader; the fill lands on the price grid."""
        if side is OrderSide.BUY:
            worse = price * (1 + self._slippage)
            return _to_step(worse, rules.price_step, up=True)
        return _to_step(price * (1 - self._slippage), rules.price_step, up=False)


def _to_step(value: Decimal, step: Decimal, up: bool) -> Decimal:
    if step <= 0:
        return value
    steps = (value / step).to_integral_value(rounding=ROUND_DOWN)
    snapped = steps * step
    if up and snapped < value:
        snapped += step
    return snapped


def _check_rules(request: OrderRequest, price: Decimal, rules: MarketRules) -> None:
    """The real market's filters, so paper results never flatter what a real exchange would accept."""
    if request.amount <= 0:
        raise InvalidOrderError(f"paper: amount {request.amount} must be positive")
    if rules.amount_step > 0 and request.amount % rules.amount_step != 0:
        raise InvalidOrderError(f"paper: amount {request.amount} is not a multiple of the step {rules.amount_step}")
    if request.amount < rules.min_amount:
        raise InvalidOrderError(f"paper: amount {request.amount} is below the minimum {rules.min_amount}")
    notional = request.amount * price
    if notional < rules.min_notional:
        raise InvalidOrderError(
            f"paper: order value {notional:.2f} is below the minimum {rules.min_notional:.2f} {rules.quote}"
        )
