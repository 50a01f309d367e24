"""One order, exactly once, and what came of it: the order row written before it is sent, its fills recorded in the
account's book (fees valued in the quote currency), the equity peak, and an audit event. Used by trading decisions,
position upkeep and reconciliation alike, so every order is recorded one way."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, Decision, Order, Trade
from app.persistence.account_book import save_book
from app.services import audit, notifications
from app.services.lookup import owned
from app.services.pages import Page, page_of
from exchanges.base import Exchange, ExchangeError, OrderRequest, OrderState, PermanentExchangeError
from exchanges.book import AccountBook
from exchanges.execution import place_order_once
from exchanges.fees import quote_prices
from exchanges.orders import OrderStatus


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
    decision_ids = {order.decision_id for order in page.items if order.decision_id is not None}
    analyses: dict[int, int] = {}
    if decision_ids:
        rows = session.execute(select(Decision.id, Decision.analysis_id).where(Decision.id.in_(decision_ids)))
        analyses = {decision_id: analysis_id for decision_id, analysis_id in rows}
    items = [
        OrderRecord(order, analyses.get(order.decision_id) if order.decision_id is not None else None)
        for order in page.items
    ]
    return Page(items, page.next_before_id)


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
