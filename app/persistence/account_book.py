"""An account's money and positions as an `AccountBook`, loaded from and saved to the database.

Paper and live accounts keep their records through the same book, so fees, cost basis and realized PnL are
computed one way everywhere (paper trading, live trading, backtests). The caller commits.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.models import Account, AccountKind, Order, Position, PositionStatus, Trade
from exchanges.book import AccountBook, BookPosition, Fill


def _open(account_id: int) -> Select[Position]:
    return select(Position).where(Position.account_id == account_id, Position.status == PositionStatus.OPEN)


def open_positions(session: Session, account_id: int) -> list[Position]:
    """The account's open positions (at most one per symbol), by symbol."""
    return list(session.scalars(_open(account_id).order_by(Position.symbol)))


def open_position(session: Session, account_id: int, symbol: str) -> Position | None:
    """The account's open position in `symbol`, if it holds one."""
    return session.scalar(_open(account_id).where(Position.symbol == symbol))


def load_book(session: Session, account: Account) -> AccountBook:
    return AccountBook(
        quote_currency=account.quote_currency,
        cash=account.current_balance,
        enforce_funds=account.kind is AccountKind.PAPER,
        positions={
            p.symbol: BookPosition(p.symbol, p.quantity, p.entry_price, p.cost_basis, p.opened_at)
            for p in open_positions(session, account.id)
        },
    )


def save_book(session: Session, account: Account, book: AccountBook, fills: Sequence[Fill], order: Order) -> None:
    """Write the book's cash and positions back, with one Trade per new fill of `order`.

    Each trade keeps its fee as charged (amount and currency) and its value in the quote currency (None when it
    could not be valued, which also flags the position's fees as incomplete); a sell that left dust records it on
    the position it closed.
    """
    account.current_balance = book.cash
    open_rows = {p.symbol: p for p in open_positions(session, account.id)}
    for fill in fills:
        row = open_rows.get(fill.symbol)
        held = book.positions.get(fill.symbol)
        if row is None:
            row = Position(
                account_id=account.id,
                symbol=fill.symbol,
                quantity=0,
                entry_price=fill.price,
                cost_basis=0,
                opened_at=fill.executed_at,
                highest_price=fill.price,
                stop_loss=order.stop_loss,
                take_profit=order.take_profit,
            )
            session.add(row)
            session.flush()
            open_rows[fill.symbol] = row
        charge = fill.fee_charge
        row.fees_paid += fill.fee
        row.fees_unvalued = row.fees_unvalued or not charge.valued
        if fill.realized_pnl is not None:
            row.realized_pnl += fill.realized_pnl
        if fill.dust_quantity:
            row.dust_quantity, row.dust_value = fill.dust_quantity, fill.dust_value
        if held is None:
            _close(row, fill.executed_at)
        else:
            row.quantity, row.entry_price, row.cost_basis = held.quantity, held.entry_price, held.cost_basis
        session.add(
            Trade(
                account_id=account.id,
                order_id=order.id,
                position_id=row.id,
                symbol=fill.symbol,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=charge.amount,
                fee_currency=charge.currency or book.quote_currency,
                fee_value=fill.fee if charge.valued else None,
                realized_pnl=fill.realized_pnl,
                executed_at=fill.executed_at,
            )
        )


def write_off_dust(row: Position, quantity: Decimal, value: Decimal, cost_basis: Decimal, at: datetime) -> None:
    """Close a position that is dust as a whole (see `AccountBook.write_off_dust`): its cost is a realized loss."""
    row.dust_quantity, row.dust_value = quantity, value
    row.realized_pnl -= cost_basis
    _close(row, at)


def _close(row: Position, at: datetime) -> None:
    row.status = PositionStatus.CLOSED
    row.quantity = Decimal(0)
    row.cost_basis = Decimal(0)
    row.closed_at = at
