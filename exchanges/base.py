"""The exchange interface shared by the ccxt connector and the paper exchange, and the values crossing it."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from exchanges.candles import Candle
from exchanges.markets import MarketRules
from exchanges.orders import OrderSide, OrderStatus, OrderType


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: OrderSide
    order_type: OrderType
    amount: Decimal  # base-asset quantity, already rounded to the market's amount step
    client_order_id: str  # derived from the decision: the same decision never yields two orders
    price: Decimal | None = None  # limit orders only


@dataclass(frozen=True)
class OrderState:
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: OrderSide
    order_type: OrderType
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal
    fee_currency: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    used: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    at: datetime


class ExchangeError(Exception):
    """Base of every exchange failure. `code` is stable and goes into records and decisions."""

    code = "EXCHANGE_ERROR"
    temporary = False


class TemporaryExchangeError(ExchangeError):
    """May succeed later: network trouble, timeouts, rate limits, maintenance. Retried with backoff."""

    code = "EXCHANGE_UNAVAILABLE"
    temporary = True


class ExchangeTimeoutError(TemporaryExchangeError):
    code = "EXCHANGE_TIMEOUT"


class RateLimitedError(TemporaryExchangeError):
    code = "RATE_LIMITED"


class PermanentExchangeError(ExchangeError):
    """Will fail the same way again: never retried."""

    code = "EXCHANGE_REJECTED"


class InsufficientFundsError(PermanentExchangeError):
    code = "INSUFFICIENT_FUNDS"


class InvalidOrderError(PermanentExchangeError):
    code = "INVALID_ORDER"


class AuthenticationError(PermanentExchangeError):
    code = "EXCHANGE_AUTH"


class OrderNotFoundError(PermanentExchangeError):
    code = "ORDER_NOT_FOUND"


class Exchange(Protocol):
    """What trading needs from an exchange; the ccxt connector and the paper exchange both provide it."""

    id: str

    def market_rules(self, symbol: str) -> MarketRules: ...

    def fetch_candles(self, symbol: str, timeframe: str, limit: int, now: datetime) -> list[Candle]: ...

    def fetch_ticker(self, symbol: str) -> Ticker: ...

    def fetch_balances(self) -> dict[str, Balance]: ...

    def create_order(self, request: OrderRequest) -> OrderState: ...

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderState | None:
        """The order with this client order id, or None if the exchange never received it."""
        ...

    def cancel_order(self, client_order_id: str, symbol: str) -> OrderState: ...

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderState]: ...
