"""AI spend against budgets, per UTC day and month, on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from decimal import Decimal

from app.extensions import db
from app.models import BudgetLedgerEntry, LedgerStatus
from app.services.usage import budget_status
from tests import factories

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def entry(user, status, reserved, settled, created_at):
    db.session.add(
        BudgetLedgerEntry(
            user_id=user.id,
            provider="deepseek",
            model="deepseek-flash",
            status=status,
            reserved_usd=Decimal(reserved),
            settled_usd=Decimal(settled) if settled is not None else None,
            created_at=created_at,
        )
    )


def test_spend_counts_settled_calls_and_open_reservations_per_utc_period(app):
    user = factories.user(db.session, email="spend@example.com", display_name="Spend", daily_budget_usd=Decimal("1.00"))
    entry(user, LedgerStatus.SETTLED, "0.01", "0.002", datetime(2026, 11, 30, 0, 0, tzinfo=UTC))
    entry(user, LedgerStatus.RESERVED, "0.003", None, datetime(2026, 11, 30, 11, tzinfo=UTC))
    entry(user, LedgerStatus.RELEASED, "0.5", "0", datetime(2026, 11, 30, 11, tzinfo=UTC))
    entry(user, LedgerStatus.SETTLED, "0.2", "0.1", datetime(2026, 11, 29, 23, 59, tzinfo=UTC))
    entry(user, LedgerStatus.SETTLED, "9", "4", datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    db.session.flush()
    today, month = budget_status(db.session, user, NOW)
    assert (today.name, today.spent_usd, today.budget_usd, today.remaining_usd) == (
        "today",
        Decimal("0.005"),
        Decimal("1.00"),
        Decimal("0.995"),
    )
    assert (month.name, month.spent_usd, month.remaining_usd) == ("this month", Decimal("0.105"), Decimal("9.895"))
