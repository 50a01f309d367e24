"""The AI usage page: spend by day, model, watch and API key, cache hit rate, budgets (editable), chart JSON."""

import html
from datetime import UTC, datetime
from decimal import Decimal

from app.extensions import db
from app.models import BudgetLedgerEntry, LedgerStatus, User
from app.services import api_keys
from tests import factories
from tests.web.helpers import csrf_token, post_form


def spend(user, usd, *, model="deepseek-flash", watch=None, key=None, when=None):
    db.session.add(
        BudgetLedgerEntry(
            user_id=user.id,
            provider="deepseek",
            model=model,
            status=LedgerStatus.SETTLED,
            reserved_usd=Decimal(usd) * 2,
            settled_usd=Decimal(usd),
            watch_id=watch.id if watch else None,
            api_key_id=key.id if key else None,
            created_at=when or datetime.now(UTC),
        )
    )


def test_the_page_needs_sign_in(client):
    response = client.get("/usage")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_spend_by_model_watch_and_key_with_budgets_and_cache_rate(signed_in, ada, stranger):
    watch = factories.watch(db.session, ada, signal_source="deepseek")
    key = api_keys.issue_key(db.session, ada.id, "ci script", ["read"], datetime.now(UTC)).key
    spend(ada, "0.0123", watch=watch)
    spend(ada, "0.0100", model="deepseek-pro", key=key)
    spend(stranger, "0.5")  # never on Ada's page
    factories.analysis(db.session, ada, provider="deepseek", model="deepseek-flash", cached=True)
    factories.analysis(db.session, ada, provider="deepseek", model="deepseek-flash", cached=False)
    factories.analysis(db.session, ada)  # rules: not counted in the cache rate
    db.session.commit()

    response = signed_in.get("/usage")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "deepseek:deepseek-flash" in page and "deepseek:deepseek-pro" in page
    assert "$0.0123" in page and "$0.0100" in page
    assert "$0.0223" in page  # today's spend and the window's total
    assert "of $1.00 budget" in page and "of $10.00 budget" in page
    assert "BTC/USDT 1h deepseek" in page
    assert f"ci script ({key.prefix})" in page
    assert "Not through an API key" in page
    assert "50%" in page and "1 of 2 AI analyses" in page
    assert "$0.5000" not in page and "$0.50" not in page
    assert 'value="1.00"' in page and 'value="10.00"' in page  # the budget form, filled in


def test_an_empty_window_says_what_to_do(signed_in):
    page = signed_in.get("/usage?days=7").get_data(as_text=True)
    assert "Nothing spent in the last 7 days" in page
    assert "No AI analyses in the last 7 days" in page
    assert 'href="/settings#llm-keys"' in page


def test_the_chart_json_has_one_bar_per_day(signed_in, ada):
    spend(ada, "0.25")
    db.session.commit()
    chart = signed_in.get("/usage/chart.json?days=7").get_json()
    [pane] = chart["panes"]
    [series] = pane["series"]
    assert series["type"] == "histogram"
    assert len(series["data"]) == 7
    assert series["data"][-1]["value"] == 0.25
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert series["data"][-1]["time"] == int(today.timestamp())
    assert 'data-chart-url="/usage/chart.json?days=7"' in signed_in.get("/usage?days=7").get_data(as_text=True)


def test_the_chart_of_a_window_without_spend_has_no_bars_and_says_so(signed_in):
    chart = signed_in.get("/usage/chart.json?days=7").get_json()
    assert chart["panes"][0]["series"][0]["data"] == []
    assert chart["empty"] == "No AI spend in the last 7 days: nothing to chart."


def test_budgets_are_changed_and_shown(signed_in, ada):
    response = post_form(
        signed_in, "/usage/budgets", {"daily_budget_usd": "2.5", "monthly_budget_usd": "20.1234"}, "/usage"
    )
    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, ada.id)
    assert (user.daily_budget_usd, user.monthly_budget_usd) == (Decimal("2.5"), Decimal("20.1234"))
    page = signed_in.get("/usage").get_data(as_text=True)
    assert "AI budgets set: 2.50 USD a day, 20.1234 USD a month." in page
    assert "of $2.50 budget" in page and "of $20.12 budget" in page


def test_a_bad_budget_is_refused_on_its_field_and_what_was_typed_is_kept(signed_in, ada):
    response = post_form(signed_in, "/usage/budgets", {"daily_budget_usd": "-1", "monthly_budget_usd": "abc"}, "/usage")
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert 'Daily budget (USD) must be between 0 and 100,000 USD, got "-1"' in page
    assert 'value="-1"' in page and 'value="abc"' in page
    response = post_form(
        signed_in, "/usage/budgets", {"daily_budget_usd": "0.12345", "monthly_budget_usd": "5"}, "/usage"
    )
    assert response.status_code == 400
    assert "Daily budget (USD) has at most 4 decimals, got 0.12345" in response.get_data(as_text=True)
    response = post_form(signed_in, "/usage/budgets", {"daily_budget_usd": "1", "monthly_budget_usd": "abc"}, "/usage")
    assert "Monthly budget (USD) must be an amount in USD, got &#34;abc&#34;" in response.get_data(as_text=True)
    response = post_form(signed_in, "/usage/budgets", {"daily_budget_usd": "", "monthly_budget_usd": "5"}, "/usage")
    assert response.status_code == 400
    assert "Enter the daily budget in USD" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, ada.id).daily_budget_usd == Decimal("1.00")


def test_budgets_without_a_csrf_token_are_refused(signed_in, ada):
    csrf_token(signed_in, "/usage")
    response = signed_in.post("/usage/budgets", data={"daily_budget_usd": "5", "monthly_budget_usd": "50"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(User, ada.id).daily_budget_usd == Decimal("1.00")
