"""An account's book: cash, positions, cost basis and realized PnL, kept from fills.

The one accounting path for paper trading, live trading and backtests: every exchange (paper or ccxt) reports an
order's fills as an `OrderState`, and `AccountBook.record_fill` turns that into money and positions the same way.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from exchanges.base import InsufficientFundsError, OrderState
from exchanges.markets import MarketRules
from exchanges.orders import OrderSide

# The database keeps 10 decimals; amounts the book derives by division are rounded to that here, not later.
AMOUNT_QUANTUM = Decimal("1e-10")


@dataclass
class BookPosition:
    symbol: str
    quantity: Decimal
    entry_price: Decimal  # average fill price, fees excluded
    cost_basis: Decimal  # quote spent on the quantity held, buy fees included
    opened_at: datetime


@dataclass(frozen=True)
class Fill:
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: Decimal  # base asset added to (buy) or removed from (sell) the position
    price: Decimal
    fee: Decimal  # valued in the quote currency
    realized_pnl: Decimal | None  # sells only: proceeds after fees minus the cost basis sold
    executed_at: datetime


@dataclass
class AccountBook:
    """Cash, positions and the fills recorded so far, of one account in one quote currency.

    `enforce_funds`: a paper account's book refuses what it cannot pay for or does not hold. A live account's
    book only mirrors fills the exchange has already made, so it must record them whatever it believed before
    (reconciliation then adopts the exchange's balances).
    `recorded`: the quantity already recorded per client order id, so reporting the same order again (a retry
    that found the order, a reconciliation that sees more of it filled) records only what is new.
    """

    quote_currency: str
    cash: Decimal
    positions: dict[str, BookPosition] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    recorded: dict[str, Decimal] = field(default_factory=dict)
    enforce_funds: bool = True

    def record_fill(self, state: OrderState, rules: MarketRules) -> Fill | None:
        """Record what `state` reports filled beyond what was recorded for its client order id.

        The fee is valued in the quote currency: a fee taken in the base asset (Binance takes a buy's fee out of
        the coins bought) is valued at the fill price and leaves `filled - fee` held. Returns None when nothing
        new was filled. Raises `InsufficientFundsError` when `enforce_funds` and the book cannot cover it.
        """
        already = self.recorded.get(state.client_order_id, Decimal(0))
        quantity = state.filled - already
        if quantity <= 0 or state.average_price is None or state.updated_at is None:
            return None
        price = state.average_price
        fee = state.fee if already == 0 else state.fee * quantity / state.filled
        fee_in_base = state.fee_currency == rules.base
        fee_value = (fee * price).quantize(AMOUNT_QUANTUM) if fee_in_base else fee
        if state.side is OrderSide.BUY:
            held = quantity - fee if fee_in_base else quantity
            fill = self.apply_buy(state.client_order_id, state.symbol, held, price, fee_value, state.updated_at)
        else:
            fill = self.apply_sell(state.client_order_id, state.symbol, quantity, price, fee_value, state.updated_at)
        self.recorded[state.client_order_id] = state.filled
        return fill

    def check_funds(self, side: OrderSide, symbol: str, quantity: Decimal, price: Decimal, fee: Decimal) -> None:
        """Raise `InsufficientFundsError` if a fill of `quantity` at `price` (fee in quote) cannot be covered."""
        if not self.enforce_funds:
            return
        if side is OrderSide.BUY:
            cost = quantity * price + fee
            if cost > self.cash:
                raise InsufficientFundsError(
                    f"paper: buying {quantity} {symbol} costs {cost:.8f} {self.quote_currency} with fees, "
                    f"only {self.cash:.8f} free"
                )
            return
        held = self.positions.get(symbol)
        have = held.quantity if held else Decimal(0)
        if quantity > have:
            raise InsufficientFundsError(f"paper: cannot sell {quantity} {symbol}, holding {have}")

    def apply_buy(
        self, order_id: str, symbol: str, quantity: Decimal, price: Decimal, fee: Decimal, at: datetime
    ) -> Fill:
        self.check_funds(OrderSide.BUY, symbol, quantity, price, fee)
        cost = quantity * price + fee
        self.cash -= cost
        held = self.positions.get(symbol)
        if held is None:
            self.positions[symbol] = BookPosition(symbol, quantity, price, cost, at)
        else:
            total = held.quantity + quantity
            held.entry_price = ((held.entry_price * held.quantity + price * quantity) / total).quantize(AMOUNT_QUANTUM)
            held.quantity = total
            held.cost_basis += cost
        return self._record(Fill(order_id, symbol, OrderSide.BUY, quantity, price, fee, None, at))

    def apply_sell(
        self, order_id: str, symbol: str, quantity: Decimal, price: Decimal, fee: Decimal, at: datetime
    ) -> Fill:
        self.check_funds(OrderSide.SELL, symbol, quantity, price, fee)
        held = self.positions.get(symbol)
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
        return self._record(Fill(order_id, symbol, OrderSide.SELL, quantity, price, fee, proceeds - basis_sold, at))

    def equity(self, prices: dict[str, Decimal]) -> Decimal:
        """Cash plus every position at the given prices (a position without a price counts at its entry)."""
        return self.cash + sum(
            (p.quantity * prices.get(symbol, p.entry_price) for symbol, p in self.positions.items()), Decimal(0)
        )

    def _record(self, fill: Fill) -> Fill:
        self.fills.append(fill)
        return fill
