"""An account's book: cash, positions, cost basis and realized PnL, kept from fills.

The one accounting path for paper trading, live trading and backtests: every exchange (paper or ccxt) reports an
order's fills as an `OrderState`, and `AccountBook.record_fill` turns that into money and positions the same way.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from exchanges.base import InsufficientFundsError, OrderState
from exchanges.markets import MarketRules
from exchanges.orders import OrderSide

# The database keeps 10 decimals; amounts the book derives by division are rounded to that here, not later.
AMOUNT_QUANTUM = Decimal("1e-10")

# The price of one unit of a fee currency in the book's quote currency (e.g. BNB -> 312.40 USDT), or None when it
# cannot be had; only asked for a fee paid in neither the base nor the quote currency.
FeePrice = Callable[[str], Decimal | None]


def no_fee_price(currency: str) -> Decimal | None:
    return None


def is_dust(quantity: Decimal, price: Decimal, rules: MarketRules) -> bool:
    """Whether a held `quantity` can no longer be sold at `price`: its whole amount steps are none, below the
    market's minimum amount, or worth less than its minimum notional (the exchange would refuse the order)."""
    if quantity <= 0:
        return False
    sellable = (quantity / rules.amount_step).to_integral_value(ROUND_DOWN) * rules.amount_step
    return sellable == 0 or sellable < rules.min_amount or sellable * price < rules.min_notional


@dataclass(frozen=True)
class FeeCharge:
    """A fill's fee as charged (`amount` in `currency`) and its `value` in the book's quote currency at fill time;
    `valued` is False when no price for the fee currency was available (the value then counts as 0)."""

    amount: Decimal
    currency: str
    value: Decimal
    valued: bool = True


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
    fee: Decimal  # valued in the quote currency; 0 for a fee that could not be valued (see `charge`)
    realized_pnl: Decimal | None  # sells only: proceeds after valued fees minus the cost basis sold (dust included)
    executed_at: datetime
    charge: FeeCharge | None = None  # the fee as the exchange charged it; None means `fee` in the quote currency
    dust_quantity: Decimal = Decimal(0)  # sells only: the unsellable remainder that closed the position with it
    dust_value: Decimal = Decimal(0)  # that remainder at the fill price, in the quote currency

    @property
    def fee_charge(self) -> FeeCharge:
        return self.charge or FeeCharge(self.fee, "", self.fee)


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

    def record_fill(self, state: OrderState, rules: MarketRules, fee_price: FeePrice = no_fee_price) -> Fill | None:
        """Record what `state` reports filled beyond what was recorded for its client order id.

        The fee keeps its currency and is valued in the quote currency at fill time: a fee in the quote currency is
        its own value; one taken in the base asset (Binance takes a buy's fee out of the coins bought) is valued at
        the fill price and leaves `filled - fee` held; one in a third asset (BNB) is valued at `fee_price(currency)`,
        or, without a price, counted as 0 and flagged unvalued on the fill (`charge.valued`), never as if it were
        quote. A sell leaving a remainder `is_dust` closes the position (see `apply_sell`). Returns None when
        nothing new was filled. Raises `InsufficientFundsError` when `enforce_funds` and the book cannot cover it.
        """
        already = self.recorded.get(state.client_order_id, Decimal(0))
        quantity = state.filled - already
        if quantity <= 0 or state.average_price is None or state.updated_at is None:
            return None
        price = state.average_price
        fee = state.fee if already == 0 else (state.fee * quantity / state.filled).quantize(AMOUNT_QUANTUM)
        charge = self._charge(fee, state.fee_currency, price, rules, fee_price)
        fee_in_base = charge.currency == rules.base
        if state.side is OrderSide.BUY:
            held = quantity - fee if fee_in_base else quantity
            fill = self.apply_buy(
                state.client_order_id, state.symbol, held, price, charge.value, state.updated_at, charge
            )
        else:
            fill = self.apply_sell(
                state.client_order_id, state.symbol, quantity, price, charge.value, state.updated_at, rules, charge
            )
        self.recorded[state.client_order_id] = state.filled
        return fill

    def _charge(
        self, fee: Decimal, currency: str | None, price: Decimal, rules: MarketRules, fee_price: FeePrice
    ) -> FeeCharge:
        if currency in (None, "", self.quote_currency):
            return FeeCharge(fee, self.quote_currency, fee)
        if currency == rules.base:
            return FeeCharge(fee, currency, (fee * price).quantize(AMOUNT_QUANTUM))
        if fee == 0:
            return FeeCharge(fee, currency, Decimal(0))
        unit_price = fee_price(currency)
        if unit_price is None:
            return FeeCharge(fee, currency, Decimal(0), valued=False)
        return FeeCharge(fee, currency, (fee * unit_price).quantize(AMOUNT_QUANTUM))

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
        self,
        order_id: str,
        symbol: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        at: datetime,
        charge: FeeCharge | None = None,
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
        return self._record(Fill(order_id, symbol, OrderSide.BUY, quantity, price, fee, None, at, charge))

    def apply_sell(
        self,
        order_id: str,
        symbol: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        at: datetime,
        rules: MarketRules | None = None,
        charge: FeeCharge | None = None,
    ) -> Fill:
        """Sell `quantity` at `price` (fee in quote). With `rules`, a remainder that `is_dust` at `price` closes the
        position too: it is written off at its cost basis (it cannot be sold, so it is no longer equity) and
        reported on the fill as dust, quantity and value, so it never keeps a position open."""
        self.check_funds(OrderSide.SELL, symbol, quantity, price, fee)
        held = self.positions.get(symbol)
        remainder = held.quantity - min(quantity, held.quantity) if held is not None else Decimal(0)
        dust = remainder if rules is not None and is_dust(remainder, price, rules) else Decimal(0)
        # Quantized to the stored scale, so cash + cost basis - realized PnL stays exactly constant.
        if held is None:
            basis_sold = Decimal(0)
        elif quantity >= held.quantity or dust:
            basis_sold = held.cost_basis
        else:
            basis_sold = (held.cost_basis * quantity / held.quantity).quantize(AMOUNT_QUANTUM)
        proceeds = quantity * price - fee
        self.cash += proceeds
        if held is not None:
            held.quantity = remainder - dust
            held.cost_basis -= basis_sold
            if held.quantity == 0:
                del self.positions[symbol]
        dust_value = (dust * price).quantize(AMOUNT_QUANTUM)
        return self._record(
            Fill(
                order_id,
                symbol,
                OrderSide.SELL,
                quantity,
                price,
                fee,
                proceeds - basis_sold,
                at,
                charge,
                dust_quantity=dust,
                dust_value=dust_value,
            )
        )

    def write_off_dust(self, symbol: str, price: Decimal, rules: MarketRules) -> tuple[Decimal, Decimal, Decimal]:
        """Close a position that is dust as a whole (nothing of it can be sold at `price`), without an order.

        Returns (quantity, value at `price`, cost basis written off), all zero when the position is not dust.
        """
        held = self.positions.get(symbol)
        if held is None or not is_dust(held.quantity, price, rules):
            return Decimal(0), Decimal(0), Decimal(0)
        del self.positions[symbol]
        return held.quantity, (held.quantity * price).quantize(AMOUNT_QUANTUM), held.cost_basis

    def equity(self, prices: dict[str, Decimal]) -> Decimal:
        """Cash plus every position at the given prices (a position without a price counts at its entry)."""
        return self.cash + sum(
            (p.quantity * prices.get(symbol, p.entry_price) for symbol, p in self.positions.items()), Decimal(0)
        )

    def _record(self, fill: Fill) -> Fill:
        self.fills.append(fill)
        return fill
