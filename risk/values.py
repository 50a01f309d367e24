"""The plain values risk judges and returns: what it is asked about, and what it answers."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Literal, Protocol

from risk.states import TradingState
from risk.steps import EXACT


class ActionLike(Protocol):
    @property
    def value(self) -> str: ...


class SignalLike(Protocol):
    """What risk needs from a signal; ai.signal.Signal satisfies it without risk importing it."""

    @property
    def action(self) -> ActionLike: ...  # .value is "BUY", "SELL" or "HOLD"

    @property
    def confidence(self) -> int: ...

    @property
    def entry_price(self) -> Decimal | None: ...

    @property
    def stop_loss(self) -> Decimal | None: ...

    @property
    def take_profit(self) -> Decimal | None: ...


@dataclass(frozen=True, slots=True)
class MarketLimits:
    """One market's trading rules, as the app maps them from the exchange."""

    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    fee_rate: Decimal

    def __post_init__(self) -> None:
        # Sizing truncates to these steps; an unknown (zero) precision must be mapped by the caller, not guessed here.
        if self.amount_step <= 0 or self.price_step <= 0:
            raise ValueError(f"{self.symbol}: amount_step and price_step must be positive")
        if self.min_amount < 0 or self.min_notional < 0:
            raise ValueError(f"{self.symbol}: min_amount and min_notional must not be negative")
        if not 0 <= self.fee_rate < 1:
            raise ValueError(f"{self.symbol}: fee_rate must be a fraction in [0, 1), e.g. 0.001 for 0.1%")

    @classmethod
    def of(cls, rules: "MarketRulesLike", fee_rate: Decimal) -> "MarketLimits":
        """From an exchange's market rules (any object with these attributes) and the fee rate to assume."""
        return cls(
            rules.symbol,
            rules.base,
            rules.quote,
            rules.amount_step,
            rules.price_step,
            rules.min_amount,
            rules.min_notional,
            fee_rate,
        )


class MarketRulesLike(Protocol):
    """What `MarketLimits.of` reads; exchanges.markets.MarketRules has it, without risk importing exchanges.

    Read-only members, so that frozen dataclasses (MarketRules is one) satisfy it.
    """

    @property
    def symbol(self) -> str: ...
    @property
    def base(self) -> str: ...
    @property
    def quote(self) -> str: ...
    @property
    def amount_step(self) -> Decimal: ...
    @property
    def price_step(self) -> Decimal: ...
    @property
    def min_amount(self) -> Decimal: ...
    @property
    def min_notional(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """A spot long held in the account."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    highest_price: Decimal  # since entry; the trailing stop hangs from it


@dataclass(frozen=True, slots=True)
class AccountState:
    """The account as the app last saw it. Amounts are in `currency`; times are UTC (naive ones are read as UTC)."""

    equity: Decimal
    free_quote: Decimal
    open_positions: tuple[OpenPosition, ...]
    realized_pnl_today: Decimal  # for the current UTC day; the app resets it at midnight UTC
    peak_equity: Decimal
    trading_state: TradingState
    last_loss_at: datetime | None
    currency: str = "USDT"  # a market quoted in anything else cannot be sized against this equity

    def position(self, symbol: str) -> OpenPosition | None:
        return next((p for p in self.open_positions if p.symbol == symbol and p.quantity > 0), None)


class Code(StrEnum):
    """Reason codes. Refusals, notes on an approved order, and stop-management events share one vocabulary."""

    APPROVED = "APPROVED"
    SIZED = "SIZED"
    HOLD_SIGNAL = "HOLD_SIGNAL"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    CONFIDENCE_BELOW_MIN = "CONFIDENCE_BELOW_MIN"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"
    QUOTE_MISMATCH = "QUOTE_MISMATCH"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCING_ONLY = "REDUCING_ONLY"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    ALREADY_IN_POSITION = "ALREADY_IN_POSITION"
    NO_POSITION_TO_SELL = "NO_POSITION_TO_SELL"
    POSITION_BELOW_MIN = "POSITION_BELOW_MIN"
    DUST_LEFT = "DUST_LEFT"
    STOP_NOT_BELOW_ENTRY = "STOP_NOT_BELOW_ENTRY"
    STOP_TOO_TIGHT = "STOP_TOO_TIGHT"
    STOP_TOO_WIDE = "STOP_TOO_WIDE"
    DEFAULT_STOP_USED = "DEFAULT_STOP_USED"
    TAKE_PROFIT_NOT_ABOVE_ENTRY = "TAKE_PROFIT_NOT_ABOVE_ENTRY"
    REWARD_RISK_TOO_LOW = "REWARD_RISK_TOO_LOW"
    NOTIONAL_BELOW_MIN = "NOTIONAL_BELOW_MIN"
    RAISED_TO_MINIMUM = "RAISED_TO_MINIMUM"
    RAISE_EXCEEDS_TOLERANCE = "RAISE_EXCEEDS_TOLERANCE"
    CAPPED_BY_MAX_POSITION = "CAPPED_BY_MAX_POSITION"
    CAPPED_BY_FREE_BALANCE = "CAPPED_BY_FREE_BALANCE"
    CAPPED_BY_EXPOSURE = "CAPPED_BY_EXPOSURE"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    COOLDOWN_AFTER_LOSS = "COOLDOWN_AFTER_LOSS"
    NEW_TRADING_DAY = "NEW_TRADING_DAY"
    STOP_RAISED = "STOP_RAISED"
    STOP_HIT = "STOP_HIT"
    TAKE_PROFIT_HIT = "TAKE_PROFIT_HIT"


class Reason:
    """A coded reason; `message` is for people, `values` holds the exact numbers (as strings) for machines.

    Both may be given as functions and are then written on first use: a backtest decides thousands of times
    and reads few of the explanations, while formatting them is most of a decision's cost.
    """

    __slots__ = ("_message", "_values", "code")

    def __init__(
        self, code: str, message: str | Callable[[], str], values: dict[str, str] | Callable[[], dict[str, str]]
    ) -> None:
        self.code = code
        self._message = message
        self._values = values

    @property
    def message(self) -> str:
        if not isinstance(self._message, str):
            # Written in the same exact arithmetic as the decision, whatever context the reader is in.
            with localcontext(EXACT):
                self._message = self._message()
        return self._message

    @property
    def values(self) -> dict[str, str]:
        if not isinstance(self._values, dict):
            with localcontext(EXACT):
                self._values = self._values()
        return self._values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reason):
            return NotImplemented
        return (self.code, self.message, self.values) == (other.code, other.message, other.values)

    __hash__ = None  # type: ignore[assignment]  # `values` is a dict: reasons were never hashable

    def __repr__(self) -> str:
        return f"Reason(code={self.code!r}, message={self.message!r}, values={self.values!r})"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class OrderSpec:
    symbol: str
    side: Literal["buy", "sell"]
    quantity: Decimal  # already a multiple of the market's amount_step
    order_type: Literal["market"]
    stop_loss: Decimal | None
    take_profit: Decimal | None
    reference_price: Decimal  # the last price the order was sized at
    notional: Decimal  # quantity x reference_price, before fees
    risk_amount: Decimal  # quantity x (reference_price - stop_loss); zero for a close


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    order: OrderSpec | None
    reasons: tuple[Reason, ...]

    def __post_init__(self) -> None:
        # The UI and the audit trail rely on both: no silent decisions, no approval without an order.
        if not self.reasons:
            raise ValueError("a decision always carries at least one reason")
        if self.approved != (self.order is not None):
            raise ValueError("an approved decision has an order, a refused one has none")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)
