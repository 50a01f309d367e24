"""The audit trail: one append-only event per change a person may later ask about. The caller commits."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, AuditEvent


def record(
    session: Session,
    event: str,
    message: str,
    *,
    user_id: int | None,
    account_id: int | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add an audit event (`event` is a dotted code such as `account.trading_state`) to the session."""
    row = AuditEvent(user_id=user_id, account_id=account_id, event=event, message=message, details=details or {})
    if at is not None:
        row.occurred_at = at
    session.add(row)
    return row


def for_account(session: Session, account: Account, event: str, message: str, **details: Any) -> AuditEvent:
    """An event about `account` (its owner is the user of record)."""
    return record(session, event, message, user_id=account.user_id, account_id=account.id, details=details)


def latest(session: Session, account_id: int, event: str) -> AuditEvent | None:
    """The account's most recent event of this kind."""
    return session.scalar(
        select(AuditEvent)
        .where(AuditEvent.account_id == account_id, AuditEvent.event == event)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
