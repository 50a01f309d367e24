"""/api/v1/usage and /api/v1/budgets: AI spend by day, model, watch and key; the user's and the key's caps."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.extensions import db
from app.models import ApiKey, BudgetLedgerEntry, LedgerStatus
from app.persistence.budget_ledger import period_starts
from tests import factories
from tests.api.conftest import ApiClient, issue


def today() -> datetime:
    return period_starts(datetime.now(UTC))[0]


def spend(
    user,
    amount: str,
    *,
    at: datetime | None = None,
    status=LedgerStatus.SETTLED,
    key=None,
    watch=None,
    provider: str = "deepseek",
    model: str = "deepseek-chat",
    reserved: str | None = None,
) -> BudgetLedgerEntry:
    entry = BudgetLedgerEntry(
        user_id=user.id,
        api_key_id=key.id if key else None,
        watch_id=watch.id if watch else None,
        provider=provider,
        model=model,
        status=status,
        reserved_usd=Decimal(reserved or amount),
        settled_usd=None if status is LedgerStatus.RESERVED else Decimal(amount),
        created_at=at or today() + timedelta(seconds=1),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def key_of(client) -> ApiKey:
    return db.session.query(ApiKey).filter_by(user_id=client.user.id).order_by(ApiKey.id).first()


def test_usage_splits_the_spend_by_day_model_watch_and_key(caller, stranger):
    key, watch = key_of(caller), factories.watch(db.session, caller.user)
    spend(caller.user, "0.25", key=key, watch=watch)
    spend(caller.user, "0.1", status=LedgerStatus.RESERVED, provider="claude", model="claude-haiku")
    spend(caller.user, "0", status=LedgerStatus.RELEASED, reserved="5", key=key)  # released: counts nothing
    spend(caller.user, "1.5", key=key, at=today() - timedelta(days=3, hours=-2))
    spend(caller.user, "100", at=today() - timedelta(days=40))  # outside the default 30 days
    spend(stranger.user, "7", key=key_of(stranger))  # never the caller's
    for cached in (True, False, False):
        factories.analysis(db.session, caller.user, provider="deepseek", model="deepseek-chat", cached=cached)
    factories.analysis(db.session, caller.user)  # rules: never asks a model, not in the hit rate
    factories.analysis(db.session, stranger.user, provider="deepseek", cached=True)
    db.session.commit()

    response = caller.get("/api/v1/usage")
    assert response.status_code == 200
    usage = response.json
    assert usage["days"] == 30 and usage["total_usd"] == "1.85"
    assert usage["since"] == (today() - timedelta(days=29)).isoformat()
    days = usage["by_day"]
    assert len(days) == 30 and days[0]["key"] == (today() - timedelta(days=29)).date().isoformat()
    assert (days[-1]["key"], days[-1]["spent_usd"], days[-1]["calls"]) == (today().date().isoformat(), "0.35", 3)
    assert (days[-4]["spent_usd"], days[-4]["calls"]) == ("1.5", 1)
    assert sum(Decimal(day["spent_usd"]) for day in days) == Decimal("1.85")
    assert [(m["key"], m["spent_usd"]) for m in usage["by_model"]] == [
        ("deepseek:deepseek-chat", "1.75"),
        ("claude:claude-haiku", "0.1"),
    ]
    assert [(w["id"], w["spent_usd"]) for w in usage["by_watch"]] == [(None, "1.6"), (watch.id, "0.25")]
    assert usage["by_watch"][1]["label"] == "BTC/USDT 1h rules:sma_cross"
    by_key = usage["by_api_key"]
    assert [(k["id"], k["spent_usd"], k["calls"]) for k in by_key] == [(key.id, "1.75", 3), (None, "0.1", 1)]
    assert by_key[0]["label"] == f"{key.name} ({key.prefix})" and by_key[1]["label"] == "not through an API key"
    assert (usage["analyses"], usage["cached_analyses"]) == (3, 1)
    assert usage["cache_hit_rate"] == pytest.approx(1 / 3)

    longer = caller.get("/api/v1/usage?days=60").json
    assert longer["total_usd"] == "101.85" and len(longer["by_day"]) == 60
    just_today = caller.get("/api/v1/usage?days=1").json
    assert just_today["total_usd"] == "0.35" and [d["spent_usd"] for d in just_today["by_day"]] == ["0.35"]


def test_usage_without_any_spend_is_zero_with_no_hit_rate(caller):
    usage = caller.get("/api/v1/usage?days=7").json
    assert usage["total_usd"] == "0" and [d["spent_usd"] for d in usage["by_day"]] == ["0"] * 7
    assert usage["by_model"] == usage["by_watch"] == usage["by_api_key"] == []
    assert usage["analyses"] == 0 and usage["cache_hit_rate"] is None


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=week", "days=1.5", "day=3"])
def test_bad_usage_queries_are_422_naming_the_field(caller, query):
    response = caller.get(f"/api/v1/usage?{query}")
    assert response.status_code == 422
    assert response.json["error"]["details"]["field"] == query.split("=")[0]


def test_budgets_show_the_users_caps_and_the_calling_keys_own(api_app, caller, stranger):
    user = caller.user
    user.daily_budget_usd, user.monthly_budget_usd = Decimal("1"), Decimal("20")
    capped = ApiClient(api_app, issue(user, ["read"]))
    capped_key = db.session.query(ApiKey).filter_by(user_id=user.id).order_by(ApiKey.id.desc()).first()
    capped_key.daily_budget_usd = Decimal("0.5")  # and no monthly cap of its own
    spend(user, "0.2", key=capped_key)
    spend(user, "0.05", key=capped_key, status=LedgerStatus.RESERVED)
    spend(user, "0.3", key=key_of(caller))  # another key of the user: only the user's budget counts it
    spend(user, "0.7", key=capped_key, at=today() - timedelta(days=40))  # an earlier month
    spend(stranger.user, "9")
    db.session.commit()

    response = capped.get("/api/v1/budgets")
    assert response.status_code == 200
    budgets = response.json
    assert budgets["daily"] == {"period": "today", "budget_usd": "1", "spent_usd": "0.55", "remaining_usd": "0.45"}
    assert budgets["monthly"]["budget_usd"] == "20" and budgets["monthly"]["spent_usd"] == "0.55"
    assert budgets["monthly"]["remaining_usd"] == "19.45"
    own = budgets["api_key"]
    assert own["id"] == capped_key.id
    assert own["daily"] == {"period": "today", "budget_usd": "0.5", "spent_usd": "0.25", "remaining_usd": "0.25"}
    assert own["monthly"] == {"period": "this month", "budget_usd": None, "spent_usd": "0.25", "remaining_usd": None}

    # Over its cap, what remains is nothing, not a negative amount.
    spend(user, "0.4", key=capped_key)
    db.session.commit()
    assert capped.get("/api/v1/budgets").json["api_key"]["daily"]["remaining_usd"] == "0"
    assert caller.get("/api/v1/budgets").json["api_key"]["daily"]["spent_usd"] == "0.3"


def test_usage_and_budgets_need_a_key_with_the_read_scope(api_app):
    user = factories.user(db.session)
    trader = ApiClient(api_app, issue(user, ["trade"]))
    anonymous = ApiClient(api_app, None)
    for path in ("/api/v1/usage", "/api/v1/budgets"):
        assert anonymous.get(path).status_code == 401
        response = trader.get(path)
        assert response.status_code == 403 and response.json["error"]["details"]["required_scope"] == "read"
    response = ApiClient(api_app, issue(user, ["read"])).get("/api/v1/budgets?extra=1")
    assert response.status_code == 422
