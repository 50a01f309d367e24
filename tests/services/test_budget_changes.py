"""Changing a user's AI budgets: Decimal USD from 0 to the maximum, at most 4 decimals, audited."""

from decimal import Decimal

import pytest

from app.errors import InvalidInputError, NotFoundError
from app.extensions import db
from app.models import AuditEvent, User
from app.services.usage import BudgetChange, change_budgets
from tests import factories


def test_budgets_are_set_from_typed_text_and_audited(app):
    user = factories.user(db.session)
    change_budgets(db.session, user.id, BudgetChange("$0.0001", "1,000"))
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(User, user.id)
    assert (stored.daily_budget_usd, stored.monthly_budget_usd) == (Decimal("0.0001"), Decimal(1000))
    [event] = db.session.query(AuditEvent).filter_by(event="user.budgets").all()
    assert event.message == "AI budgets set to 0.0001 USD a day and 1000 USD a month (were 1 and 10)"


def test_zero_means_no_paid_calls_and_is_allowed(app):
    user = factories.user(db.session)
    change_budgets(db.session, user.id, BudgetChange("0", Decimal("0")))
    assert (user.daily_budget_usd, user.monthly_budget_usd) == (Decimal(0), Decimal(0))


@pytest.mark.parametrize(
    ("daily", "monthly", "field", "message"),
    [
        ("-1", "10", "daily_budget_usd", 'daily_budget_usd must be between 0 and 100,000 USD, got "-1"'),
        ("1", "100001", "monthly_budget_usd", 'monthly_budget_usd must be between 0 and 100,000 USD, got "100001"'),
        (
            "20",
            "5",
            "daily_budget_usd",
            "daily_budget_usd 20 is more than the monthly budget 5 USD: a day could never spend it",
        ),
        ("0.12345", "10", "daily_budget_usd", "daily_budget_usd has at most 4 decimals, got 0.12345"),
        ("1", "ten", "monthly_budget_usd", 'monthly_budget_usd must be an amount in USD, got "ten"'),
        ("NaN", "10", "daily_budget_usd", 'daily_budget_usd must be an amount in USD, got "NaN"'),
        ("", "10", "daily_budget_usd", 'daily_budget_usd must be an amount in USD, got ""'),
    ],
)
def test_a_bad_budget_names_its_field_and_value_and_changes_nothing(app, daily, monthly, field, message):
    user = factories.user(db.session)
    with pytest.raises(InvalidInputError) as raised:
        change_budgets(db.session, user.id, BudgetChange(daily, monthly))
    assert (raised.value.field, raised.value.message) == (field, message)
    assert (user.daily_budget_usd, user.monthly_budget_usd) == (Decimal("1.00"), Decimal("10.00"))


def test_a_missing_user_is_not_found(app):
    with pytest.raises(NotFoundError):
        change_budgets(db.session, 999_999, BudgetChange("1", "2"))
