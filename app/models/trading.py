"""Accounts and what happens in them: watches, decisions, orders, positions and fills."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.enums import AccountKind, PositionStatus
from app.models.types import Amount, JSONDocument, UTCDateTime, enum_column, utcnow, zero
from exchanges.orders import OrderSide, OrderStatus, OrderType
from risk.states import TradingState

if TYPE_CHECKING:
    from app.models.users import ExchangeCredential, User


class Account(Model):
    """A paper or live trading account in one quote currency, with its own risk settings."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        CheckConstraint("starting_balance >= 0", name="starting_balance_not_negative"),
        CheckConstraint("current_balance >= 0", name="current_balance_not_negative"),
        CheckConstraint("kind = 'paper' OR credential_id IS NOT NULL", name="live_needs_credential"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[AccountKind] = mapped_column(enum_column(AccountKind))
    exchange_id: Mapped[str] = mapped_column(String(32))
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("exchange_credentials.id", ondelete="RESTRICT"), index=True
    )
    quote_currency: Mapped[str] = mapped_column(String(12), default="USDT")
    starting_balance: Mapped[Decimal] = mapped_column(Amount)
    current_balance: Mapped[Decimal] = mapped_column(Amount)
    peak_equity: Mapped[Decimal] = mapped_column(Amount)
    trading_state: Mapped[TradingState] = mapped_column(enum_column(TradingState), default=TradingState.ACTIVE)
    # ccxt `urls["api"]` override (regional endpoint, testnet, proxy); None = the exchange's own URLs.
    exchange_base_url: Mapped[str | None] = mapped_column(String(255))
    # The close time of the last bar trading processed for this account: its clock, which only moves forward.
    last_bar_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Overrides of the risk manager's documented defaults; an empty document means "all defaults".
    risk_settings: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped["User"] = relationship(back_populates="accounts")
    credential: Mapped["ExchangeCredential | None"] = relationship()


class Watch(Model):
    """A symbol and timeframe analysed on a cadence by one signal source, within its own budget."""

    __tablename__ = "watches"
    __table_args__ = (
        UniqueConstraint("user_id", "exchange_id", "symbol", "timeframe", "signal_source"),
        CheckConstraint("cadence_minutes > 0", name="cadence_positive"),
        Index("ix_watches_due", "enabled", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    # The API key that created or last changed it (None: the web UI or CLI): its runs spend under the key's caps and
    # may ask only its allowed models.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    exchange_id: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    cadence_minutes: Mapped[int]
    # A signal-source spec: "deepseek[:MODEL]", "claude[:MODEL]", "rules:STRATEGY" or "replay".
    signal_source: Mapped[str] = mapped_column(String(80))
    signal_params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    max_cost_per_call_usd: Mapped[Decimal | None] = mapped_column(Amount)
    daily_budget_usd: Mapped[Decimal | None] = mapped_column(Amount)
    auto_execute: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Open time of the last closed bar a run was recorded for: the next run is for a later bar only.
    last_bar_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped["User"] = relationship(back_populates="watches")
    account: Mapped[Account | None] = relationship()


class Decision(Model):
    """The risk manager's verdict on one analysis for one account, with its coded reasons."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("analysis_id", "account_id"),
        CheckConstraint("NOT approved OR order_spec IS NOT NULL", name="approved_has_order"),
        Index("ix_decisions_account_created", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    approved: Mapped[bool]
    # [{"code": "NOTIONAL_BELOW_MIN", "message": "3.80 < 5.00 USDT", "values": {...}}, ...]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    order_spec: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Model):
    """An order as sent to an exchange (or the paper exchange); the client order id makes it idempotent."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("filled_quantity >= 0 AND filled_quantity <= quantity", name="filled_within_quantity"),
        Index("ix_orders_account_status", "account_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[OrderSide] = mapped_column(enum_column(OrderSide))
    order_type: Mapped[OrderType] = mapped_column(enum_column(OrderType))
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus), default=OrderStatus.PENDING)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    limit_price: Mapped[Decimal | None] = mapped_column(Amount)
    stop_loss: Mapped[Decimal | None] = mapped_column(Amount)
    take_profit: Mapped[Decimal | None] = mapped_column(Amount)
    filled_quantity: Mapped[Decimal] = mapped_column(Amount, default=zero)
    average_fill_price: Mapped[Decimal | None] = mapped_column(Amount)
    fee: Mapped[Decimal] = mapped_column(Amount, default=zero)
    fee_currency: Mapped[str | None] = mapped_column(String(12))
    error_code: Mapped[str | None] = mapped_column(String(48))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Position(Model):
    """A long spot position; at most one open per account and symbol."""

    __tablename__ = "positions"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        Index(
            "uq_positions_one_open_per_symbol",
            "account_id",
            "symbol",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    status: Mapped[PositionStatus] = mapped_column(enum_column(PositionStatus), default=PositionStatus.OPEN)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    entry_price: Mapped[Decimal] = mapped_column(Amount)
    # Quote spent on the quantity held, buy fees included: what realized PnL is measured against.
    cost_basis: Mapped[Decimal] = mapped_column(Amount, default=zero)
    stop_loss: Mapped[Decimal | None] = mapped_column(Amount)
    take_profit: Mapped[Decimal | None] = mapped_column(Amount)
    # The best price since entry, from which a trailing stop is measured.
    highest_price: Mapped[Decimal | None] = mapped_column(Amount)
    realized_pnl: Mapped[Decimal] = mapped_column(Amount, default=zero)
    # In the quote currency; a fee that could not be valued (no FEE/QUOTE price) is left out and flagged.
    fees_paid: Mapped[Decimal] = mapped_column(Amount, default=zero)
    fees_unvalued: Mapped[bool] = mapped_column(default=False)
    # What was left when the position closed: below the amount step or the minimum notional, so it cannot be sold.
    dust_quantity: Mapped[Decimal] = mapped_column(Amount, default=zero)
    dust_value: Mapped[Decimal] = mapped_column(Amount, default=zero)  # quote currency, at the exit price
    # Exit orders sent so far (each has its own client order id) and why the last one failed, if it did.
    exit_attempts: Mapped[int] = mapped_column(default=0)
    exit_error_code: Mapped[str | None] = mapped_column(String(48))
    exit_error_message: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Trade(Model):
    """One fill of an order."""

    __tablename__ = "trades"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("price > 0", name="price_positive"),
        Index("ix_trades_account_executed", "account_id", "executed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id", ondelete="SET NULL"), index=True)
    exchange_trade_id: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[OrderSide] = mapped_column(enum_column(OrderSide))
    quantity: Mapped[Decimal] = mapped_column(Amount)
    price: Mapped[Decimal] = mapped_column(Amount)
    fee: Mapped[Decimal] = mapped_column(Amount, default=zero)  # in fee_currency
    fee_currency: Mapped[str | None] = mapped_column(String(12))
    # The fee in the account's quote currency at fill time; None when it could not be valued.
    fee_value: Mapped[Decimal | None] = mapped_column(Amount)
    realized_pnl: Mapped[Decimal | None] = mapped_column(Amount)
    executed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
