"""What a market context is built from and what it returns: the account and position facts, the options, the
finished `MarketContext`, and the actions those facts allow."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ai.actions import Action

MAX_RECENT_BARS = 48


@dataclass(frozen=True)
class PositionFacts:
    """The open spot long: quantity in base units and the average entry price."""

    quantity: Decimal
    entry_price: Decimal

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise ValueError(f"quantity {self.quantity} must not be negative (spot, long only)")
        if self.entry_price <= 0:
            raise ValueError(f"entry price {self.entry_price} must be positive")


@dataclass(frozen=True)
class AccountFacts:
    equity: Decimal
    free_quote: Decimal
    quote_currency: str
    min_order_notional: Decimal

    def __post_init__(self) -> None:
        if self.free_quote < 0:
            raise ValueError(f"free quote balance {self.free_quote} must not be negative")
        if self.min_order_notional < 0:
            raise ValueError(f"minimum order notional {self.min_order_notional} must not be negative")


@dataclass(frozen=True)
class ContextOptions:
    symbol: str
    timeframe: str
    blind: bool = False
    recent_bars: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.recent_bars <= MAX_RECENT_BARS:
            raise ValueError(f"recent_bars {self.recent_bars} must be between 1 and {MAX_RECENT_BARS}")


@dataclass(frozen=True)
class MarketContext:
    """The text for the model and the facts needed to check its answer.

    `last_close` is the real close of the bar; blind prices in `text` are real prices divided by `price_factor`
    (which is 1 when not blind). `bar_time` is the bar's open time (UTC), also in blind mode.
    """

    text: str
    allowed_actions: tuple[Action, ...]
    last_close: Decimal
    bar_time: datetime
    price_factor: Decimal


def allowed_actions(position: PositionFacts | None, account: AccountFacts, last_close: Decimal) -> tuple[Action, ...]:
    """Spot, long only, in the fixed order BUY, SELL, HOLD.

    BUY needs a free quote balance of at least the minimum order notional. SELL needs an open position whose value
    reaches the minimum order notional too: a smaller remainder is dust the exchange refuses to sell.
    """
    actions = []
    if account.free_quote > 0 and account.free_quote >= account.min_order_notional:
        actions.append(Action.BUY)
    if position is not None and position.quantity > 0 and position.quantity * last_close >= account.min_order_notional:
        actions.append(Action.SELL)
    actions.append(Action.HOLD)
    return tuple(actions)
