"""The paper exchange: fills market orders at a supplied price with fees and slippage, under the real market's
precision and minimums. `PaperBook` is the one accounting path for paper trading and backtests alike."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from exchanges.base import (
    Balance,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRequest,
    OrderState,
    Ticker,
)
from exchanges.candles import Candle
from exchanges.markets import MarketCatalog, MarketRules
from exchanges.orders import OrderSide, OrderStatus, OrderType

BPS = Decimal(10_000)
# The database keeps 10 decimals; amounts the book derives by division are rounded to that here, not later.
AMOUNT_QUANTUM = Decimal("1e-10")


@dataclass
class PaperPosition:
    symbol: str
    quantity: Decimal
    entry_price: Decimal  # average fill price, fees excluded
    cost_basis: Decimal  # quote spent on the quantity held, buy fees included
    opened_at: datetime


@dataclass(frozen=True)
class PaperFill:
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal  # in the quote currency
    realized_pnl: Decimal | None  # sells only: proceeds after fees minus the cost basis sold
    executed_at: datetime


@dataclass
class PaperBook:
    """Cash, positions and orders of one account. Fees are charged in the quote currency.

    `enforce_funds`: a paper account's book refuses what it cannot pay for or does not hold. A live account's
    book only mirrors fills the exchange has already made, so it must record them whatever it believed before
    (reconciliation then adopts the exchange's balances).
    """

    quote_currency: str
    cash: Decimal
    positions: dict[str, PaperPosition] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)
    fills: list[PaperFill] = field(default_factory=list)
    enforce_funds: bool = True

    def apply_buy(
        self, order_id: str, symbol: str, quantity: Decimal, price: Decimal, fee: Decimal, at: datetime
    ) -> PaperFill:
        cost = quantity * price + fee
        if self.enforce_funds and cost > self.cash:
            raise InsufficientFundsError(
                f"paper: buying {quantity} {symbol} costs {cost:.8f} {self.quote_currency} with fees, "
                f"only {self.cash:.8f} free"
            )
        self.cash -= cost
        held = self.positions.get(symbol)
        if held is None:
            self.positions[symbol] = PaperPosition(symbol, quantity, price, cost, at)
        else:
            total = held.quantity + quantity
            held.entry_price = ((held.entry_price * held.quantity + price * quantity) / total).quantize(AMOUNT_QUANTUM)
            held.quantity = total
            held.cost_basis += cost
        return self._record(PaperFill(order_id, symbol, OrderSide.BUY, quantity, price, fee, None, at))

    def apply_sell(
        self, order_id: str, symbol: str, quantity: Decimal, price: Decimal, fee: Decimal, at: datetime
    ) -> PaperFill:
        held = self.positions.get(symbol)
        have = held.quantity if held else Decimal(0)
        if quantity > have and self.enforce_funds:
            raise InsufficientFundsError(f"paper: cannot sell {quantity} {symbol}, holding {have}")
        # Quantized to the stored scale, so cash + cost basis - realized PnL stays exactly constant.
        if held is None:
            basis_sold = Decimal(0)
        elif quantity >= held.quantity:
            basis_sold = held.cost_basis
        else:
            basis_sold = (held.cost_basis * quantity / held.quantity).quantize(AMOUNT_QUANTUM)
        proceeds = quantity * price - fee
        self.cash += proceeds
        if held is not None:
            held.quantity -= min(quantity, held.quantity)
            held.cost_basis -= basis_sold
            if held.quantity == 0:
                del self.positions[symbol]
        return self._record(
            PaperFill(order_id, symbol, OrderSide.SELL, quantity, price, fee, proceeds - basis_sold, at)
        )

    def equity(self, prices: dict[str, Decimal]) -> Decimal:
        """Cash plus every position at the given prices (a position without a price counts at its entry)."""
        return self.cash + sum(
            (p.quantity * prices.get(symbol, p.entry_price) for symbol, p in self.positions.items()), Decimal(0)
        )

    def _record(self, fill: PaperFill) -> PaperFill:
        self.fills.append(fill)
        return fill


class PaperExchange:
    """An `Exchange` backed by a `PaperBook`. Orders fill at once at `price_of(symbol)`, worsened by slippage."""

    id = "paper"

    def __init__(
        self,
        book: PaperBook,
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
        known = self.book.orders.get(request.client_order_id)
        if known is not None:
            return known  # the same client order id never fills twice
        if request.order_type is not OrderType.MARKET:
            raise InvalidOrderError("paper: only market orders are supported")
        rules = self.market_rules(request.symbol)
        price = self._fill_price(request.side, self._price_of(request.symbol), rules)
        _check_rules(request, price, rules)
        fee = (request.amount * price * self._fee(rules)).quantize(AMOUNT_QUANTUM)
        at = self._clock()
        apply = self.book.apply_buy if request.side is OrderSide.BUY else self.book.apply_sell
        apply(request.client_order_id, request.symbol, request.amount, price, fee, at)
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
        self.book.orders[request.client_order_id] = state
        return state

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderState | None:
        return self.book.orders.get(client_order_id)

    def cancel_order(self, client_order_id: str, symbol: str) -> OrderState:
        order = self.book.orders.get(client_order_id)
        if order is None:
            raise OrderNotFoundError(f"paper: no order {client_order_id}")
        if order.status is OrderStatus.OPEN:
            order = replace(order, status=OrderStatus.CANCELED, updated_at=self._clock())
            self.book.orders[client_order_id] = order
        return order

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return [o for o in self.book.orders.values() if o.status is OrderStatus.OPEN and symbol in (None, o.symbol)]

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
