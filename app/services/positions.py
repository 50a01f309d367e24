"""An account's positions as the user sees them: what is held, what was closed, and what to know about each (dust
left behind, fees that could not be valued, an exit that has not gone through)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, Position, PositionStatus
from app.services.lookup import owned
from app.services.orders import HistoryFilters
from app.services.pages import Page, page_of

if TYPE_CHECKING:
    from app.services.overview import PositionOverview


@dataclass(frozen=True)
class PositionNotes:
    position: Position
    notes: list[str]  # one sentence each; empty when there is nothing to know


@dataclass(frozen=True)
class AccountPositions:
    account: Account
    clock: datetime | None  # close of the last bar trading processed for the account
    positions: list[PositionNotes]  # open ones first, then the most recently closed


def account_positions(session: Session, user_id: int, account_id: int, closed_limit: int = 10) -> AccountPositions:
    """The account's open positions and its `closed_limit` latest closed ones, each with its notes.

    Raises `NotFoundError` for an account that is missing or someone else's.
    """
    account = owned(session, Account, account_id, user_id)
    query = select(Position).where(Position.account_id == account.id)
    held = session.scalars(query.where(Position.status == PositionStatus.OPEN).order_by(Position.symbol))
    closed = session.scalars(
        query.where(Position.status == PositionStatus.CLOSED).order_by(Position.id.desc()).limit(closed_limit)
    )
    return AccountPositions(
        account,
        account.last_bar_at,
        [PositionNotes(row, position_notes(row, account.quote_currency)) for row in (*held, *closed)],
    )


def position_notes(row: Position, quote: str) -> list[str]:
    """What to know about a position, one sentence each: a failed exit, dust left behind, fees left unvalued."""
    notes = []
    if row.exit_error_code:
        notes.append(f"exit failed ({row.exit_error_code}): {row.exit_error_message}; retried on the next bar")
    if row.dust_quantity:
        notes.append(
            f"dust {row.dust_quantity.normalize():f} left ({row.dust_value:.2f} {quote} at the exit): too small "
            "to sell, written off at its cost"
        )
    if row.fees_unvalued:
        notes.append(f"fees incomplete: a fee paid in another currency had no {quote} price; PnL leaves it out")
    return notes


# The positions page: every account of the user at once, filtered like the orders and trades pages.


@dataclass(frozen=True)
class ClosedLine:
    item: PositionNotes
    account: Account  # whose quote currency its PnL and fees are in


@dataclass(frozen=True)
class ClosedTotal:
    account: Account
    realized_pnl: Decimal  # in the account's quote currency, fees and dust write-offs included
    fees_paid: Decimal  # in the account's quote currency (fees that could not be valued are left out)
    positions: int


def position_status(value: str | None) -> PositionStatus | None:
    """`open` or `closed` as a query string carries it (empty: both); `InvalidInputError` (field `status`)."""
    if not value:
        return None
    try:
        return PositionStatus(value.strip().lower())
    except ValueError:
        raise InvalidInputError(f'status must be open or closed, got "{value[:40]}"', field="status") from None


def open_holdings(
    session: Session, settings: Settings, user_id: int, filters: HistoryFilters
) -> list["PositionOverview"]:
    """The open positions of the user's accounts (or of `filters.account_id`) priced at the latest offline price
    (`overview.account_overviews`), narrowed by symbol and the UTC days they opened. Raises `NotFoundError` for an
    account filter that is missing or someone else's."""
    from app.services import overview  # overview imports this module

    if filters.account_id is not None:
        owned(session, Account, filters.account_id, user_id)
    held = [
        item
        for view in overview.account_overviews(session, settings, user_id)
        if filters.account_id in (None, view.account.id)
        for item in view.positions
    ]
    return [item for item in held if _matches(item.position, filters, item.position.opened_at)]


def closed_positions(
    session: Session, user_id: int, filters: HistoryFilters, limit: int, before_id: int | None
) -> Page[ClosedLine]:
    """A page of the closed positions of the user's accounts (or of `filters.account_id`), newest first, narrowed
    by symbol and the UTC days they closed, each with its notes. Raises `NotFoundError` like `open_holdings`."""
    accounts = _accounts(session, user_id, filters.account_id)
    query = _closed_query(select(Position), filters, list(accounts))
    page = page_of(session, query, Position.id, limit, before_id)
    lines = [
        ClosedLine(
            PositionNotes(row, position_notes(row, accounts[row.account_id].quote_currency)), accounts[row.account_id]
        )
        for row in page.items
    ]
    return Page(lines, page.next_before_id)


def closed_totals(session: Session, user_id: int, filters: HistoryFilters) -> list[ClosedTotal]:
    """Per account, over every closed position `filters` select (not just a page): realized PnL, fees, count."""
    accounts = _accounts(session, user_id, filters.account_id)
    columns: list[Any] = [
        Position.account_id,
        func.sum(Position.realized_pnl),
        func.sum(Position.fees_paid),
        func.count(),
    ]
    query = _closed_query(select(*columns), filters, list(accounts))
    rows = session.execute(query.group_by(Position.account_id).order_by(Position.account_id))
    return [ClosedTotal(accounts[a], Decimal(pnl or 0), Decimal(fees or 0), int(n)) for a, pnl, fees, n in rows]


def _accounts(session: Session, user_id: int, account_id: int | None) -> dict[int, Account]:
    if account_id is not None:
        account = owned(session, Account, account_id, user_id)
        return {account.id: account}
    return {a.id: a for a in session.scalars(select(Account).where(Account.user_id == user_id))}


def _closed_query[Q: Select[Any]](query: Q, filters: HistoryFilters, account_ids: list[int]) -> Q:
    query = query.where(Position.account_id.in_(account_ids or [-1]), Position.status == PositionStatus.CLOSED)
    if filters.symbol is not None:
        query = query.where(Position.symbol == filters.symbol)
    if filters.start is not None:
        query = query.where(Position.closed_at >= filters.start)
    if filters.end is not None:
        query = query.where(Position.closed_at < filters.end)
    return query


def _matches(row: Position, filters: HistoryFilters, moment: datetime) -> bool:
    when = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (
        (filters.symbol is None or row.symbol == filters.symbol)
        and (filters.start is None or when >= filters.start)
        and (filters.end is None or when < filters.end)
    )
