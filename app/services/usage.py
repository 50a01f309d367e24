"""AI spend against the budgets: what a user has spent (or holds reserved) today and this month, in USD."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from app.models import User
from app.persistence.budget_ledger import committed_usd, period_starts
from app.services import notifications
from app.services.notification_wire import BUDGET_THRESHOLD_PERCENT


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


def notify_budget_crossings(session: Session, user: User, cost_usd: Decimal, now: datetime) -> list[str]:
    """After a call that cost `cost_usd`, queue `budget.threshold` for each period whose spend just crossed
    `BUDGET_THRESHOLD_PERCENT` of its budget, and `budget.exhausted` for one that just reached it. Crossings only,
    so a user is told once per period, not on every call. Returns the events queued. The caller commits."""
    events = []
    for period in budget_status(session, user, now):
        if period.budget_usd <= 0:
            continue
        before, after = period.spent_usd - cost_usd, period.spent_usd
        threshold = period.budget_usd * BUDGET_THRESHOLD_PERCENT / 100
        if before < period.budget_usd <= after:
            event = "budget.exhausted"
        elif before < threshold <= after:
            event = "budget.threshold"
        else:
            continue
        notifications.notify(
            session,
            user.id,
            event,
            {
                "period": period.name,
                "spent_usd": after,
                "budget_usd": period.budget_usd,
                "message": f"AI spend {period.name}: {after:.4f} of {period.budget_usd:.2f} USD",
            },
            now=now,
        )
        events.append(event)
    return events
