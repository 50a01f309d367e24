"""One order, exactly once, and what came of it: the order row written before it is sent, its fills recorded in the
account's book (fees valued in the quote currency), the equity peak, and an audit event. Used by trading decisions,
position upkeep and reconciliation alike, so every order is recorded one way."""

from decimal import Decimal

from sqlalchemy.orm import Session

from app.models import Account, Order
from app.persistence.account_book import save_book
from app.services import audit, notifications
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
