"""Watches: a symbol and timeframe analysed on a cadence by one signal source, within its own budget."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Watch


def list_watches(session: Session, user_id: int) -> list[Watch]:
    """The user's watches, by symbol and timeframe."""
    query = select(Watch).where(Watch.user_id == user_id).order_by(Watch.symbol, Watch.timeframe)
    return list(session.scalars(query))
