"""An account's positions as the user sees them: what is held, what was closed, and what to know about each (dust
left behind, fees that could not be valued, an exit that has not gone through)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, Position, PositionStatus
from app.services.lookup import owned


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
