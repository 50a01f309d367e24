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


def api_key(user: User, **fields) -> int:
    from app.services import api_keys

    key = api_keys.issue_key(db.session, user.id, fields.pop("name", "script"), ["analyze"], NOW, **fields).key
    db.session.commit()
    return key.id


def test_an_api_keys_caps_count_only_that_keys_calls_and_the_users_caps_still_apply(app, user):
    ledger = SqlBudgetLedger(db.engine)
    script, other = api_key(user, name="script"), api_key(user, name="other")
    caps = BudgetCaps(user_daily=Decimal("0.0030"), key_daily=Decimal("0.0010"), key_monthly=Decimal("0.0015"))
    script_scope, other_scope = BudgetScope(user.id, api_key_id=script), BudgetScope(user.id, api_key_id=other)

    settled = ledger.reserve(script_scope, caps, Decimal("0.0006"), "deepseek", "m", NOW)
    ledger.settle(settled, Decimal("0.0005"), NOW)
    ledger.reserve(script_scope, caps, Decimal("0.0004"), "deepseek", "m", NOW)  # 0.0005 settled + 0.0004 held
    with pytest.raises(BudgetExceededError) as refusal:
        ledger.reserve(script_scope, caps, Decimal("0.0002"), "deepseek", "m", NOW)
    assert str(refusal.value) == (
        "BUDGET_EXCEEDED: API key daily cap $0.001000, already spent or reserved $0.000900, "
        "this call could cost up to $0.000200"
    )
    assert refusal.value.values() == {
        "cap_name": "API key daily",
        "cap_usd": "0.001",
        "spent_usd": "0.0009",
        "estimate_usd": "0.0002",
    }
    # Another key's calls and calls made without a key count toward the user's caps only.
    ledger.reserve(other_scope, caps, Decimal("0.0009"), "deepseek", "m", NOW)
    ledger.reserve(BudgetScope(user.id), caps, Decimal("0.0010"), "deepseek", "m", NOW)
    # ...and the user's daily cap (0.0030, now full but for 0.0002) still holds for a key with room left.
    with pytest.raises(BudgetExceededError, match=r"^BUDGET_EXCEEDED: daily cap"):
        ledger.reserve(
            BudgetScope(user.id, api_key_id=api_key(user, name="fresh")), caps, Decimal("0.0003"), "x", "m", NOW
        )

    keys = sorted((e.api_key_id or 0) for e in db.session.scalars(select(BudgetLedgerEntry)))
    assert keys == sorted([0, script, script, other])


def test_an_api_keys_monthly_cap_counts_earlier_days_of_the_month(app, user):
    ledger = SqlBudgetLedger(db.engine)
    scope = BudgetScope(user.id, api_key_id=api_key(user))
    caps = BudgetCaps(key_daily=Decimal("0.0010"), key_monthly=Decimal("0.0015"))
    yesterday = NOW - timedelta(days=1)
    ledger.settle(ledger.reserve(scope, caps, Decimal("0.0010"), "claude", "m", yesterday), Decimal("0.0010"), NOW)
    with pytest.raises(BudgetExceededError, match="API key monthly cap"):
        ledger.reserve(scope, caps, Decimal("0.0006"), "claude", "m", NOW)
    ledger.reserve(scope, caps, Decimal("0.0005"), "claude", "m", NOW)
    ledger.reserve(scope, caps, Decimal("0.0010"), "claude", "m", datetime(2026, 12, 1, tzinfo=UTC))


def test_twenty_threads_through_one_key_get_exactly_the_reservations_its_cap_fits(app, user):
    ledger = SqlBudgetLedger(db.engine)
    scope = BudgetScope(user.id, api_key_id=api_key(user))
    fits = 7
    caps = BudgetCaps(user_daily=Decimal("1"), key_daily=fits * Decimal("0.0004"))
    start = threading.Barrier(20)
    reserved: list[int] = []
    refused: list[BudgetExceededError] = []
    errors: list[BaseException] = []

    def spend() -> None:
        start.wait()
        try:
            reserved.append(ledger.reserve(scope, caps, Decimal("0.0004"), "deepseek", "deepseek-flash", NOW))
        except BudgetExceededError as refusal:
            refused.append(refusal)
        except BaseException as error:  # surfaced below: a lock timeout must fail the test, not vanish
            errors.append(error)

    threads = [threading.Thread(target=spend) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert (len(reserved), len(refused)) == (fits, 20 - fits)
    assert {refusal.cap_name for refusal in refused} == {"API key daily"}
    assert committed_total(user.id) == fits * Decimal("0.0004")
