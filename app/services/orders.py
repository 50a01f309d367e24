"""One order, exactly once, and what came of it: the order row written before it is sent, its fills recorded in the
account's book (fees valued in the quote currency), the equity peak, and an audit event. Used by trading decisions,
position upkeep and reconciliation alike, so every order is recorded one way."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInputError
from app.models import Account, Decision, Order, Trade
from app.persistence.account_book import save_book
from app.services import audit, notifications
from app.services.lookup import owned
from app.services.pages import Page, page_of
from exchanges.base import Exchange, ExchangeError, OrderRequest, OrderState, PermanentExchangeError
from exchanges.book import AccountBook
from exchanges.execution import place_order_once
from exchanges.fees import quote_prices
from exchanges.orders import OrderSide, OrderStatus


def place_order(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    request: OrderRequest,
    *,
    decision_id: int | None,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    prices: dict[str, Decimal],
) -> Order:
    """Send `request` once and record its outcome; `prices` (quote currency per symbol) value the equity peak.

    Commits the order row before it is sent (reconciliation can always find it) and again once its outcome is
    known. Never raises for an exchange failure: a refused order is recorded REJECTED with its code and an
    `order.rejected` event; an unresolved one stays PENDING with `order.unresolved` for reconciliation.
    """
    order = Order(
        account_id=account.id,
        decision_id=decision_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        status=OrderStatus.PENDING,
        quantity=request.amount,
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
    session.add(order)
    session.commit()
    try:
        state = place_order_once(exchange, request)
    except PermanentExchangeError as error:
        order.status, order.error_code, order.error_message = OrderStatus.REJECTED, error.code, str(error)
        audit_order(
            session, account, "order.rejected", f"{request.side} {request.amount} {request.symbol}: {error}", order
        )
        session.commit()
        return order
    except ExchangeError as error:
        order.error_code, order.error_message = error.code, str(error)
        audit_order(session, account, "order.unresolved", f"{request.client_order_id}: {error}", order)
        session.commit()
        return order
    update_order(order, state)
    record_fills(session, account, exchange, book, order, state)
    account.peak_equity = max(account.peak_equity, book.equity(prices))
    audit_order(session, account, "order.filled", fill_text(state), order)
    if state.filled:
        notifications.notify(
            session,
            account.user_id,
            "order.filled",
            {
                "account_id": account.id,
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "quantity": state.filled,
                "price": state.average_price,
                "fee": state.fee,
                "fee_currency": state.fee_currency,
                "message": fill_text(state),
            },
        )
    session.commit()
    return order


def record_fills(
    session: Session, account: Account, exchange: Exchange, book: AccountBook, order: Order, state: OrderState
) -> None:
    """Record in the book what `state` reports filled beyond what the book holds for the order, and save it.

    A fee in a third currency (BNB) is valued at the exchange's FEE/QUOTE price; without one it is saved unvalued
    and the position says its fees are incomplete. Flushes; the caller commits.
    """
    fills_before = len(book.fills)
    book.record_fill(state, exchange.market_rules(order.symbol), quote_prices(exchange, account.quote_currency))
    session.flush()
    save_book(session, account, book, book.fills[fills_before:], order)


def update_order(order: Order, state: OrderState) -> None:
    order.status = state.status
    order.exchange_order_id = state.exchange_order_id
    order.filled_quantity = state.filled
    order.average_fill_price = state.average_price
    order.fee = state.fee
    order.fee_currency = state.fee_currency


def fill_text(state: OrderState) -> str:
    return (
        f"{state.side.value} {state.filled} {state.symbol} at {state.average_price} "
        f"(fee {state.fee} {state.fee_currency or ''}), {state.status.value}"
    )


def audit_order(session: Session, account: Account, event: str, message: str, order: Order | None) -> None:
    details = {"client_order_id": order.client_order_id} if order is not None else {}
    audit.for_account(session, account, event, message, **details)


@dataclass(frozen=True)
class OrderRecord:
    order: Order
    analysis_id: int | None  # the analysis whose decision placed it; None for an order no decision placed (an exit)


def account_orders(
    session: Session,
    user_id: int,
    account_id: int,
    limit: int,
    before_id: int | None,
    *,
    symbol: str | None = None,
    status: OrderStatus | None = None,
) -> Page[OrderRecord]:
    """A page of the account's orders, newest first, optionally of one `symbol` and `status`, each with the analysis
    it came from. Amounts are as recorded: quantities in the base asset, prices in the quote currency, the fee in
    `fee_currency`. Raises `NotFoundError` for an account that is missing or someone else's."""
    account = owned(session, Account, account_id, user_id)
    query = select(Order).where(Order.account_id == account.id)
    if symbol is not None:
        query = query.where(Order.symbol == symbol)
    if status is not None:
        query = query.where(Order.status == status)
    page = page_of(session, query, Order.id, limit, before_id)
    return Page(_with_analyses(session, page.items), page.next_before_id)


def _with_analyses(session: Session, orders: list[Order]) -> list[OrderRecord]:
    decision_ids = {order.decision_id for order in orders if order.decision_id is not None}
    analyses: dict[int, int] = {}
    if decision_ids:
        rows = session.execute(select(Decision.id, Decision.analysis_id).where(Decision.id.in_(decision_ids)))
        analyses = {decision_id: analysis_id for decision_id, analysis_id in rows}
    return [
        OrderRecord(order, analyses.get(order.decision_id) if order.decision_id is not None else None)
        for order in orders
    ]


def account_trades(
    session: Session, user_id: int, account_id: int, limit: int, before_id: int | None, *, symbol: str | None = None
) -> Page[Trade]:
    """A page of the account's fills, newest first, optionally of one `symbol`: quantity in the base asset, price and
    realized PnL in the quote currency, the fee as charged in `fee_currency`. Raises `NotFoundError` for an account
    that is missing or someone else's."""
    account = owned(session, Account, account_id, user_id)
    query = select(Trade).where(Trade.account_id == account.id)
    if symbol is not None:
        query = query.where(Trade.symbol == symbol)
    return page_of(session, query, Trade.id, limit, before_id)


# The orders and trades pages: every account of the user at once, filtered by what a query string says.

_SYMBOL = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$")


@dataclass(frozen=True)
class HistoryFilters:
    """What the orders, trades and positions pages are narrowed to; None: no filter. Days are UTC, both inclusive."""

    account_id: int | None = None
    symbol: str | None = None
    status: OrderStatus | None = None
    side: OrderSide | None = None
    since: date | None = None
    until: date | None = None

    @property
    def start(self) -> datetime | None:
        return datetime.combine(self.since, time(), tzinfo=UTC) if self.since else None

    @property
    def end(self) -> datetime | None:
        """The first moment after `until` (exclusive)."""
        return datetime.combine(self.until, time(), tzinfo=UTC) + timedelta(days=1) if self.until else None


def history_filters(
    account: str | None = None,
    symbol: str | None = None,
    status: str | None = None,
    side: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> HistoryFilters:
    """Filters from text as a query string carries it (empty means none). Raises `InvalidInputError` naming the
    field and the value: an account that is no number, a symbol not like BTC/USDT, an unknown status or side, a day
    not YYYY-MM-DD, or `since` after `until`. Whether the account is the user's is checked where it is used."""
    account_id = None
    if account:
        if not account.isdigit() or not 1 <= int(account) <= 2_147_483_647:
            raise InvalidInputError(f'account must be an account number, got "{account[:40]}"', field="account")
        account_id = int(account)
    if symbol:
        symbol = symbol.strip().upper()
        if not _SYMBOL.match(symbol):
            raise InvalidInputError(f'symbol must look like BTC/USDT, got "{symbol[:40]}"', field="symbol")
    filters = HistoryFilters(
        account_id,
        symbol or None,
        _choice(OrderStatus, "status", status),
        _choice(OrderSide, "side", side),
        parse_day("since", since),
        parse_day("until", until),
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidInputError(f"since {filters.since} is after until {filters.until}", field="since")
    return filters


def _choice[E: (OrderStatus, OrderSide)](kind: type[E], field: str, value: str | None) -> E | None:
    if not value:
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        allowed = ", ".join(item.value for item in kind)
        raise InvalidInputError(f'{field} must be one of {allowed}, got "{value[:40]}"', field=field) from None


def parse_day(field: str, value: str | None) -> date | None:
    """A UTC day from YYYY-MM-DD text (empty: None); `InvalidInputError` naming `field` and the value."""
    if not value:
        return None
    text = value.strip()
    try:
        if len(text) != len("2024-01-31"):  # fromisoformat also takes 20240131 and week dates
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f'{field} must be a day as YYYY-MM-DD, got "{value[:40]}"', field=field) from None


@dataclass(frozen=True)
class OrderLine:
    record: OrderRecord
    account: Account  # whose quote currency its prices are in


@dataclass(frozen=True)
class TradeLine:
    trade: Trade
    account: Account


def user_orders(
    session: Session, user_id: int, filters: HistoryFilters, limit: int, before_id: int | None
) -> Page[OrderLine]:
    """A page of the orders of every account of the user (or of `filters.account_id`), newest first, narrowed by
    symbol, status, side and the UTC days they were placed. Raises `NotFoundError` for an account filter that is
    missing or someone else's."""
    accounts = _accounts(session, user_id, filters.account_id)
    query = _narrowed(select(Order), Order, filters, Order.created_at, list(accounts))
    if filters.status is not None:
        query = query.where(Order.status == filters.status)
    page = page_of(session, query, Order.id, limit, before_id)
    records = _with_analyses(session, page.items)
    return Page([OrderLine(r, accounts[r.order.account_id]) for r in records], page.next_before_id)


def user_trades(
    session: Session, user_id: int, filters: HistoryFilters, limit: int, before_id: int | None
) -> Page[TradeLine]:
    """A page of the fills of every account of the user (or of `filters.account_id`), newest first, narrowed by
    symbol, side and the UTC days they executed (`filters.status` does not apply). Raises `NotFoundError` for an
    account filter that is missing or someone else's."""
    accounts = _accounts(session, user_id, filters.account_id)
    query = _narrowed(select(Trade), Trade, filters, Trade.executed_at, list(accounts))
    page = page_of(session, query, Trade.id, limit, before_id)
    return Page([TradeLine(t, accounts[t.account_id]) for t in page.items], page.next_before_id)


@dataclass(frozen=True)
class FeeTotal:
    account: Account
    fee_currency: str | None  # as charged (None: a fill with no fee reported)
    fee: Decimal  # in fee_currency
    fee_value: Decimal  # in the account's quote currency, over the fills whose fee could be valued
    unvalued: int  # fills whose fee had no quote price
    fills: int


@dataclass(frozen=True)
class PnlTotal:
    account: Account
    realized_pnl: Decimal  # in the account's quote currency, over the fills that closed quantity
    fills: int


def trade_totals(session: Session, user_id: int, filters: HistoryFilters) -> tuple[list[FeeTotal], list[PnlTotal]]:
    """Over every fill `filters` select (not just a page): the fees per account and fee currency, and the realized
    PnL per account. Raises `NotFoundError` like `user_trades`."""
    accounts = _accounts(session, user_id, filters.account_id)
    columns: list[Any] = [
        Trade.account_id,
        Trade.fee_currency,
        func.sum(Trade.fee),
        func.sum(Trade.fee_value),
        func.count(),
        func.count(Trade.fee_value),
    ]
    fee_query = _narrowed(select(*columns), Trade, filters, Trade.executed_at, list(accounts))
    fees = [
        FeeTotal(accounts[a], currency, Decimal(fee or 0), Decimal(value or 0), int(n) - int(valued), int(n))
        for a, currency, fee, value, n, valued in session.execute(
            fee_query.group_by(Trade.account_id, Trade.fee_currency).order_by(Trade.account_id, Trade.fee_currency)
        )
    ]
    pnl_columns: list[Any] = [Trade.account_id, func.sum(Trade.realized_pnl), func.count(Trade.realized_pnl)]
    pnl_query = _narrowed(select(*pnl_columns), Trade, filters, Trade.executed_at, list(accounts))
    pnls = [
        PnlTotal(accounts[a], Decimal(pnl or 0), int(n))
        for a, pnl, n in session.execute(pnl_query.group_by(Trade.account_id).order_by(Trade.account_id))
        if n
    ]
    return fees, pnls


def _accounts(session: Session, user_id: int, account_id: int | None) -> dict[int, Account]:
    if account_id is not None:
        account = owned(session, Account, account_id, user_id)
        return {account.id: account}
    return {a.id: a for a in session.scalars(select(Account).where(Account.user_id == user_id))}


def _narrowed[Q: Select[Any]](
    query: Q, model: type[Order] | type[Trade], filters: HistoryFilters, moment: Any, account_ids: list[int]
) -> Q:
    query = query.where(model.account_id.in_(account_ids or [-1]))
    if filters.symbol is not None:
        query = query.where(model.symbol == filters.symbol)
    if filters.side is not None:
        query = query.where(model.side == filters.side)
    if filters.start is not None:
        query = query.where(moment >= filters.start)
    if filters.end is not None:
        query = query.where(moment < filters.end)
    return query
