"""The budget ledger on SQLite and PostgreSQL: caps hold, even with 50 threads racing for a small budget."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from ai.budget import BudgetCaps, BudgetExceededError, BudgetScope
from app.extensions import db
from app.models import BudgetLedgerEntry, LedgerStatus, User
from app.persistence.budget_ledger import SqlBudgetLedger
from tests import factories

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def user(app) -> User:
    user = factories.user(db.session, email="spender@example.com", password="irrelevant password")
    db.session.commit()
    return user


def committed_total(user_id: int) -> Decimal:
    total = Decimal(0)
    for entry in db.session.scalars(select(BudgetLedgerEntry).where(BudgetLedgerEntry.user_id == user_id)):
        if entry.status is LedgerStatus.SETTLED:
            total += entry.settled_usd
        elif entry.status is LedgerStatus.RESERVED:
            total += entry.reserved_usd
    return total


def test_reserve_settle_release_and_the_refusal_message(app, user):
    ledger = SqlBudgetLedger(db.engine)
    caps = BudgetCaps(user_daily=Decimal("0.0010"))
    scope = BudgetScope(user.id)
    first = ledger.reserve(scope, caps, Decimal("0.0006"), "deepseek", "deepseek-flash", NOW)
    with pytest.raises(BudgetExceededError) as refusal:
        ledger.reserve(scope, caps, Decimal("0.0006"), "deepseek", "deepseek-flash", NOW)
    assert str(refusal.value) == (
        "BUDGET_EXCEEDED: daily cap $0.001000, already spent or reserved $0.000600, "
        "this call could cost up to $0.000600"
    )
    ledger.settle(first, Decimal("0.0001"), NOW)
    second = ledger.reserve(scope, caps, Decimal("0.0006"), "deepseek", "deepseek-flash", NOW)
    ledger.release(second, NOW)
    assert committed_total(user.id) == Decimal("0.0001")
    statuses = sorted(e.status.value for e in db.session.scalars(select(BudgetLedgerEntry)))
    assert statuses == ["released", "settled"]


def test_days_and_months_are_utc_calendar_periods(app, user):
    ledger = SqlBudgetLedger(db.engine)
    scope = BudgetScope(user.id)
    daily = BudgetCaps(user_daily=Decimal("0.001"), user_monthly=Decimal("0.0025"))
    yesterday = NOW - timedelta(days=1)
    ledger.settle(ledger.reserve(scope, daily, Decimal("0.001"), "claude", "m", yesterday), Decimal("0.001"), yesterday)
    ledger.settle(ledger.reserve(scope, daily, Decimal("0.001"), "claude", "m", NOW), Decimal("0.001"), NOW)
    with pytest.raises(BudgetExceededError, match="monthly cap"):
        ledger.reserve(scope, BudgetCaps(user_monthly=Decimal("0.0025")), Decimal("0.001"), "claude", "m", NOW)
    next_month = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    ledger.reserve(scope, daily, Decimal("0.001"), "claude", "m", next_month)


def test_watch_caps_count_only_that_watch(app, user):
    watches = [factories.watch(db.session, user, symbol=s, signal_source="x") for s in ("BTC/USDT", "ETH/USDT")]
    db.session.commit()
    ledger = SqlBudgetLedger(db.engine)
    caps = BudgetCaps(watch_daily=Decimal("0.001"))
    ledger.reserve(BudgetScope(user.id, watches[0].id), caps, Decimal("0.001"), "deepseek", "m", NOW)
    with pytest.raises(BudgetExceededError, match="watch daily cap"):
        ledger.reserve(BudgetScope(user.id, watches[0].id), caps, Decimal("0.0001"), "deepseek", "m", NOW)
    ledger.reserve(BudgetScope(user.id, watches[1].id), caps, Decimal("0.001"), "deepseek", "m", NOW)


def test_fifty_threads_never_overshoot_a_small_cap(app, user):
    ledger = SqlBudgetLedger(db.engine)
    cap = Decimal("0.0100")
    caps = BudgetCaps(user_daily=cap)
    scope = BudgetScope(user.id)
    start = threading.Barrier(50)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def spend(index: int) -> None:
        start.wait()
        try:
            reservation = ledger.reserve(scope, caps, Decimal("0.0004"), "deepseek", "deepseek-flash", NOW)
        except BudgetExceededError:
            outcomes.append("refused")
            return
        except BaseException as error:  # surfaced below: a lock timeout must fail the test, not vanish
            errors.append(error)
            return
        # Some calls cost less than reserved, some fail and release: later reservations may then fit.
        if index % 5 == 0:
            ledger.release(reservation, NOW)
            outcomes.append("released")
        else:
            ledger.settle(reservation, Decimal("0.00035"), NOW)
            outcomes.append("settled")

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(outcomes) == 50
    assert "refused" in outcomes
    total = committed_total(user.id)
    assert total <= cap, f"overshoot: {total} > {cap}"
    assert outcomes.count("settled") * Decimal("0.00035") == total
