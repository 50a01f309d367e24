"""Reconciliation: the exchange is the source of truth for orders and holdings; every difference is recorded.

Runs on start-up (`make run`) and on demand (`flask --app wsgi reconcile`). When the exchange cannot be reached,
nothing is changed and the run is recorded as deferred: the next run picks the same differences up again.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import NotFoundError, ServiceError
from app.models import Account, AccountKind, Order, PositionStatus
from app.persistence.account_book import open_positions
from app.services import Clock, audit, system_clock
from app.services.account_lock import account_lock
from app.services.exchanges import account_exchange
from app.services.orders import record_fills
from exchanges.base import Balance, Exchange, ExchangeError, OrderState, TemporaryExchangeError
from exchanges.book import AccountBook
from exchanges.execution import retry_temporary
from exchanges.orders import OrderStatus

UNSETTLED = (OrderStatus.PENDING, OrderStatus.OPEN)


class ExchangeRefusedError(ServiceError):
    """The exchange answered, but refused (a revoked key, say): nothing was changed."""

    code = "EXCHANGE_REFUSED"
    http_status = 502


@dataclass
class ReconcileReport:
    account_id: int
    deferred: bool = False
    differences: list[str] = field(default_factory=list)


def reconcile_account(
    session: Session,
    settings: Settings,
    account: Account,
    clock: Clock = system_clock,
    sleep: Callable[[float], None] = time.sleep,
) -> ReconcileReport:
    """Adopt the exchange's view of the account's unsettled orders and (live accounts) holdings, holding the
    account's trading lock (see `app.services.account_lock`), so no trading step of the account runs meanwhile.

    Commits its changes and an audit event per difference. An unreachable exchange changes nothing and the report
    says `deferred`; an exchange that refuses raises `ExchangeRefusedError` after recording the refusal, and a
    trading step that holds the account for too long `AccountBusyError`.
    """
    with account_lock(session, account, sleep=sleep, clock=clock):
        return _reconcile_locked(session, settings, account, clock, sleep)


def _reconcile_locked(
    session: Session, settings: Settings, account: Account, clock: Clock, sleep: Callable[[float], None]
) -> ReconcileReport:
    report = ReconcileReport(account.id)
    exchange, book = account_exchange(session, settings, account, _no_price, clock)
    try:
        remote_orders = look_up_unsettled_orders(session, account, exchange, sleep)
        balances = retry_temporary(exchange.fetch_balances, sleep=sleep) if account.kind is AccountKind.LIVE else {}
    except TemporaryExchangeError as error:
        session.rollback()
        _audit(session, account, "reconcile.deferred", f"{exchange.id} unreachable, nothing changed: {error}")
        session.commit()
        report.deferred = True
        return report
    except ExchangeError as error:
        session.rollback()
        _audit(session, account, "reconcile.failed", f"{exchange.id} refused: {error}")
        session.commit()
        raise ExchangeRefusedError(f"account #{account.id} ({account.name}): {error}") from None

    report.differences += settle_orders(session, account, exchange, book, remote_orders)
    if account.kind is AccountKind.LIVE:
        report.differences += _adopt_holdings(session, account, exchange, balances)
    for difference in report.differences:
        _audit(session, account, "reconcile.difference", difference)
    session.commit()
    return report


def look_up_unsettled_orders(
    session: Session,
    account: Account,
    exchange: Exchange,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 4,
) -> list[tuple[Order, OrderState | None]]:
    """Each PENDING or OPEN order of the account with the exchange's state of it (None: the exchange never got it),
    oldest first, each lookup tried up to `attempts` times with backoff. Looks only; raises
    `TemporaryExchangeError` (after the attempts) or `ExchangeError` from the lookup."""
    orders = session.scalars(
        select(Order).where(Order.account_id == account.id, Order.status.in_(UNSETTLED)).order_by(Order.id)
    )
    return [
        (
            order,
            retry_temporary(
                partial(exchange.fetch_order, order.client_order_id, order.symbol), max_attempts=attempts, sleep=sleep
            ),
        )
        for order in orders
    ]


def unsettled_order_ids(session: Session, account_id: int) -> list[str]:
    """The client order ids of the account's PENDING and OPEN orders, oldest first."""
    return list(
        session.scalars(
            select(Order.client_order_id)
            .where(Order.account_id == account_id, Order.status.in_(UNSETTLED))
            .order_by(Order.id)
        )
    )


def settle_orders(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    remote_orders: list[tuple[Order, OrderState | None]],
) -> list[str]:
    """Adopt the exchange's state of each looked-up order: fills not recorded yet go into the book once (with their
    fees), an order the exchange never got is marked REJECTED. The differences, one line each; does not commit."""
    differences = []
    for order, remote in remote_orders:
        differences += _settle_order(session, account, exchange, book, order, remote)
    return differences


def _settle_order(
    session: Session, account: Account, exchange: Exchange, book: AccountBook, order: Order, remote: OrderState | None
) -> list[str]:
    if remote is None:
        order.status = OrderStatus.REJECTED
        order.error_code = order.error_code or "NEVER_REACHED_EXCHANGE"
        return [f"order {order.client_order_id} never reached {exchange.id}: marked rejected"]
    if remote.status is order.status and remote.filled == order.filled_quantity:
        return []
    recorded = order.filled_quantity
    before = f"{order.status.value} {order.filled_quantity}"
    order.status, order.filled_quantity = remote.status, remote.filled
    order.exchange_order_id, order.average_fill_price = remote.exchange_order_id, remote.average_price
    order.fee, order.fee_currency = remote.fee, remote.fee_currency
    if remote.filled > recorded and account.kind is AccountKind.LIVE:
        # Only the part not recorded yet goes into the book.
        book.recorded[order.client_order_id] = recorded
        record_fills(session, account, exchange, book, order, remote)
    return [f"order {order.client_order_id}: {before} -> {remote.status.value} {remote.filled} on {exchange.id}"]


def _adopt_holdings(session: Session, account: Account, exchange: Exchange, balances: dict[str, Balance]) -> list[str]:
    """Positions and cash follow the exchange's balances; each adjustment is a recorded difference."""
    differences = []
    quote = balances.get(account.quote_currency)
    held_quote = quote.total if quote else Decimal(0)
    if held_quote != account.current_balance:
        differences.append(
            f"{account.quote_currency} balance {account.current_balance} recorded, {held_quote} on {exchange.id}"
        )
        account.current_balance = held_quote
    for position in open_positions(session, account.id):
        base = exchange.market_rules(position.symbol).base
        held = balances[base].total if base in balances else Decimal(0)
        if held != position.quantity:
            differences.append(
                f"{position.symbol} position {position.quantity} recorded, {held} {base} on {exchange.id}"
            )
            position.quantity = held
            if held == 0:
                position.status, position.closed_at = PositionStatus.CLOSED, datetime.now(UTC)
    return differences


def _no_price(symbol: str) -> Decimal:
    raise TemporaryExchangeError(f"no price for {symbol} during reconciliation")


def _audit(session: Session, account: Account, event: str, message: str) -> None:
    audit.for_account(session, account, event, message)


def accounts_to_reconcile(session: Session, account_id: int | None = None) -> list[Account]:
    """Every account, or the one named (raises `NotFoundError` when there is no such account)."""
    query = select(Account).order_by(Account.id)
    if account_id is not None:
        query = query.where(Account.id == account_id)
    accounts = list(session.scalars(query))
    if account_id is not None and not accounts:
        raise NotFoundError(f"no account #{account_id}", field="account_id")
    return accounts


def accounts_with_unsettled_orders(session: Session) -> list[Account]:
    """Every account holding a PENDING or OPEN order, by id: after a sender died, what reconciliation must settle."""
    holding = select(Order.account_id).where(Order.status.in_(UNSETTLED))
    return list(session.scalars(select(Account).where(Account.id.in_(holding)).order_by(Account.id)))
