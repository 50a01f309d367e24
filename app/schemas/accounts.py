"""The JSON form of an account: its money (amounts as strings, each beside the currency it is in), positions,
orders, fills, risk settings and trading state, and the global kill switch."""

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from app.errors import shown
from app.models import Account, Trade
from app.schemas.common import PageQuery, RecordId, RequestModel, optional_amount, optional_time
from app.services.accounts import AccountDetail, AccountHoldings, AccountSummary, Resumed, RiskSetting, TradingStatus
from app.services.kill_switch import KillSwitchState
from app.services.orders import OrderRecord
from app.services.overview import AccountOverview, PositionOverview
from app.services.positions import PositionNotes
from exchanges.orders import OrderStatus


class AccountPath(BaseModel):
    account_id: RecordId


class AccountOut(BaseModel):
    id: int
    name: str
    kind: str = Field(description="paper or live")
    exchange: str
    quote_currency: str = Field(description="the currency of every amount below")
    starting_balance: str
    cash_balance: str = Field(description="free cash in the quote currency")
    equity: str = Field(description="cash plus open positions at the latest price (at entry when it has none)")
    realized_pnl: str = Field(description="over every position, fees and dust write-offs included")
    unrealized_pnl: str = Field(description="over the open positions that have a price")
    change: str = Field(description="equity minus the starting balance")
    change_pct: str | None = Field(description="None when the account started with nothing (a live account)")
    unpriced_symbols: list[str] = Field(description="held without a price: counted at their entry price")
    trading_state: str = Field(description="ACTIVE, REDUCING or HALTED")
    state_reason: str | None = Field(description="why it is not ACTIVE, when it is not")
    last_bar_at: str | None = Field(description="close of the last bar trading processed for it")
    created_at: str

    @classmethod
    def of(cls, item: AccountOverview, state_reason: str | None) -> "AccountOut":
        account = item.account
        return cls(
            id=account.id,
            name=account.name,
            kind=account.kind.value,
            exchange=account.exchange_id,
            quote_currency=account.quote_currency,
            starting_balance=shown(account.starting_balance),
            cash_balance=shown(item.cash),
            equity=shown(item.equity),
            realized_pnl=shown(item.realized_pnl),
            unrealized_pnl=shown(item.unrealized_pnl),
            change=shown(item.change),
            change_pct=optional_amount(None if item.change_pct is None else round(item.change_pct, 4)),
            unpriced_symbols=item.unpriced,
            trading_state=account.trading_state.value,
            state_reason=state_reason,
            last_bar_at=optional_time(account.last_bar_at),
            created_at=account.created_at.isoformat(),
        )

    @classmethod
    def summary(cls, item: AccountSummary) -> "AccountOut":
        return cls.of(item.overview, item.state_reason)


class AccountList(BaseModel):
    items: list[AccountOut]


class BalanceOut(BaseModel):
    currency: str
    amount: str


class RiskSettingOut(BaseModel):
    name: str
    value: Any = Field(description="a number as a string, an integer, a list of symbols, or None (off)")
    overridden: bool = Field(description="set for this account; else the documented default")
    meaning: str

    @classmethod
    def of(cls, setting: RiskSetting) -> "RiskSettingOut":
        value = setting.value
        if isinstance(value, Decimal):
            value = shown(value)
        elif isinstance(value, tuple):
            value = list(value)
        return cls(name=setting.name, value=value, overridden=setting.overridden, meaning=setting.meaning)


class AccountDetailOut(AccountOut):
    balances: list[BalanceOut] = Field(description="the quote currency's cash, then each base asset held")
    positions_value: str = Field(description="equity minus cash, in the quote currency")
    risk_settings: list[RiskSettingOut]

    @classmethod
    def detail(cls, detail: AccountDetail) -> "AccountDetailOut":
        base = AccountOut.of(detail.overview, detail.risk.state_reason)
        return cls(
            **base.model_dump(),
            balances=[BalanceOut(currency=b.currency, amount=shown(b.amount)) for b in detail.balances],
            positions_value=shown(detail.overview.positions_value),
            risk_settings=[RiskSettingOut.of(setting) for setting in detail.risk.settings],
        )


class OpenPositionOut(BaseModel):
    id: int
    symbol: str
    base_currency: str
    quantity: str = Field(description="in the base currency")
    entry_price: str = Field(description="in the quote currency, as every price and value here")
    cost_basis: str = Field(description="buy fees included")
    stop_loss: str | None
    take_profit: str | None
    latest_price: str | None = Field(description="None: no price to be had offline")
    latest_price_at: str | None = Field(description="close time of the bar the latest price is from")
    market_value: str | None
    unrealized_pnl: str | None
    opened_at: str
    notes: list[str]

    @classmethod
    def of(cls, item: PositionOverview) -> "OpenPositionOut":
        row, quote = item.position, item.quote
        return cls(
            id=row.id,
            symbol=row.symbol,
            base_currency=item.base,
            quantity=shown(row.quantity),
            entry_price=shown(row.entry_price),
            cost_basis=shown(row.cost_basis),
            stop_loss=optional_amount(row.stop_loss),
            take_profit=optional_amount(row.take_profit),
            latest_price=None if quote is None else shown(quote.price),
            latest_price_at=None if quote is None else quote.at.isoformat(),
            market_value=optional_amount(item.market_value),
            unrealized_pnl=optional_amount(item.unrealized_pnl),
            opened_at=row.opened_at.isoformat(),
            notes=item.notes,
        )


class ClosedPositionOut(BaseModel):
    id: int
    symbol: str
    entry_price: str
    realized_pnl: str = Field(description="in the quote currency, fees and dust write-offs included")
    fees_paid: str
    opened_at: str
    closed_at: str | None
    notes: list[str]

    @classmethod
    def of(cls, item: PositionNotes) -> "ClosedPositionOut":
        row = item.position
        return cls(
            id=row.id,
            symbol=row.symbol,
            entry_price=shown(row.entry_price),
            realized_pnl=shown(row.realized_pnl),
            fees_paid=shown(row.fees_paid),
            opened_at=row.opened_at.isoformat(),
            closed_at=optional_time(row.closed_at),
            notes=item.notes,
        )


class PositionsOut(BaseModel):
    account_id: int
    quote_currency: str = Field(description="the currency of every price, value and PnL below")
    open: list[OpenPositionOut]
    closed: list[ClosedPositionOut] = Field(description="the latest closed positions, newest first")

    @classmethod
    def of(cls, holdings: AccountHoldings) -> "PositionsOut":
        account = holdings.overview.account
        return cls(
            account_id=account.id,
            quote_currency=account.quote_currency,
            open=[OpenPositionOut.of(item) for item in holdings.overview.positions],
            closed=[ClosedPositionOut.of(item) for item in holdings.closed],
        )


class OrdersQuery(PageQuery):
    symbol: str | None = Field(None, min_length=3, max_length=32, description="e.g. BTC/USDT")
    status: OrderStatus | None = Field(None, description="pending, open, closed (filled), canceled, expired, rejected")


class OrderOut(BaseModel):
    id: int
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: str
    type: str
    status: str
    quantity: str = Field(description="in the base currency")
    filled_quantity: str
    average_fill_price: str | None = Field(description="in the quote currency")
    quote_currency: str
    stop_loss: str | None
    take_profit: str | None
    fee: str
    fee_currency: str | None
    error_code: str | None
    error_message: str | None
    decision_id: int | None
    analysis_id: int | None = Field(description="the analysis whose decision placed it; None for an exit")
    created_at: str

    @classmethod
    def of(cls, record: OrderRecord, account: Account) -> "OrderOut":
        order = record.order
        return cls(
            id=order.id,
            client_order_id=order.client_order_id,
            exchange_order_id=order.exchange_order_id,
            symbol=order.symbol,
            side=order.side.value,
            type=order.order_type.value,
            status=order.status.value,
            quantity=shown(order.quantity),
            filled_quantity=shown(order.filled_quantity),
            average_fill_price=optional_amount(order.average_fill_price),
            quote_currency=account.quote_currency,
            stop_loss=optional_amount(order.stop_loss),
            take_profit=optional_amount(order.take_profit),
            fee=shown(order.fee),
            fee_currency=order.fee_currency,
            error_code=order.error_code,
            error_message=order.error_message,
            decision_id=order.decision_id,
            analysis_id=record.analysis_id,
            created_at=order.created_at.isoformat(),
        )


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class TradesQuery(PageQuery):
    symbol: str | None = Field(None, min_length=3, max_length=32, description="e.g. BTC/USDT")


class TradeOut(BaseModel):
    id: int
    order_id: int
    position_id: int | None
    symbol: str
    side: str
    price: str = Field(description="in the quote currency")
    quantity: str = Field(description="in the base currency")
    quote_currency: str
    fee: str = Field(description="as charged, in fee_currency")
    fee_currency: str | None
    fee_value: str | None = Field(description="the fee in the quote currency; None when it could not be valued")
    realized_pnl: str | None = Field(description="in the quote currency, for a fill that closed quantity")
    executed_at: str

    @classmethod
    def of(cls, trade: Trade, account: Account) -> "TradeOut":
        return cls(
            id=trade.id,
            order_id=trade.order_id,
            position_id=trade.position_id,
            symbol=trade.symbol,
            side=trade.side.value,
            price=shown(trade.price),
            quantity=shown(trade.quantity),
            quote_currency=account.quote_currency,
            fee=shown(trade.fee),
            fee_currency=trade.fee_currency,
            fee_value=optional_amount(trade.fee_value),
            realized_pnl=optional_amount(trade.realized_pnl),
            executed_at=trade.executed_at.isoformat(),
        )


class TradePage(BaseModel):
    items: list[TradeOut]
    next_cursor: str | None


class KillSwitchIn(RequestModel):
    reason: str = Field(min_length=1, max_length=200, description="why the account stops opening positions")


class TradingStateOut(BaseModel):
    account_id: int
    trading_state: str = Field(description="ACTIVE, REDUCING or HALTED")
    state_reason: str | None = Field(description="why it is not ACTIVE, when it is not")

    @classmethod
    def of(cls, status: TradingStatus) -> "TradingStateOut":
        return cls(
            account_id=status.account.id, trading_state=status.trading_state.value, state_reason=status.state_reason
        )


class ResumedOut(TradingStateOut):
    previous_state: str
    previous_reason: str | None = Field(description="why it had stopped")
    peak_equity: str = Field(description="the new peak the drawdown is measured from")
    quote_currency: str

    @classmethod
    def resumed(cls, resumed: Resumed, status: TradingStatus) -> "ResumedOut":
        return cls(
            **TradingStateOut.of(status).model_dump(),
            previous_state=resumed.previous_state.value,
            previous_reason=resumed.previous_reason,
            peak_equity=shown(resumed.peak_equity),
            quote_currency=resumed.account.quote_currency,
        )


class KillSwitchOut(BaseModel):
    engaged: bool
    reason: str | None = Field(description="why it was engaged; None when released or never set")
    by: str | None = Field(description="who last set it; None when it was never set")
    since: str | None = Field(description="when it was last set; None when it was never set")

    @classmethod
    def of(cls, state: KillSwitchState | None) -> "KillSwitchOut":
        if state is None:
            return cls(engaged=False, reason=None, by=None, since=None)
        return cls(engaged=state.engaged, reason=state.reason, by=state.by, since=state.since.isoformat())
