"""Order vocabulary shared by the ccxt connector and the paper exchange (ccxt's own strings)."""

from enum import StrEnum


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    PENDING = "pending"  # recorded locally, not yet acknowledged by the exchange
    OPEN = "open"
    CLOSED = "closed"  # ccxt's word for fully filled
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
