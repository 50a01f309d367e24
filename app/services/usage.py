"""AI spend against the budgets: what a user has spent (or holds reserved) today and this month, in USD."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from app.models import User
from app.persistence.budget_ledger import committed_usd, period_starts


@dataclass(frozen=True)
class Period:
    name: str  # "today" or "this month" (UTC)
    spent_usd: Decimal  # settled calls plus reservations still open
    budget_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.budget_usd - self.spent_usd, Decimal(0))


def budget_status(session: Session, user: User, now: datetime) -> list[Period]:
    """Today's and this month's AI spend of `user` against their daily and monthly budgets (UTC periods)."""
    day, month = period_starts(now)
    return [
        Period("today", committed_usd(session, user.id, day), user.daily_budget_usd),
        Period("this month", committed_usd(session, user.id, month), user.monthly_budget_usd),
    ]
