"""POST /analyze, GET /analyses, GET /analyses/{id}: cost bounds before any provider call, per-key caps under
concurrency, idempotent retries, pagination and tenant isolation."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import Analysis, AnalysisStatus, BudgetLedgerEntry, Order
from tests import factories
from tests.api.conftest import ApiClient, issue
from tests.conftest import clean_environ
from tests.fakes.llm_servers import answer, deepseek_server_fixture, deepseek_usage  # noqa: F401

BUY_BAR = "2024-01-12T16:00:00Z"  # rules:rsi_reversion BUYs BTC/USDT 1h here: entry 43,624.00, stop 42,434.55
RULES = {"symbol": "BTC/USDT", "timeframe": "1h", "signal_source": "rules:rsi_reversion", "until": BUY_BAR}
HOLD = {
    "action": "HOLD",
    "confidence": 40,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 6,
    "reasoning": "Mixed signals.",
    "key_factors": ["rsi 48"],
}


@pytest.fixture
def candles(api_app):
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()


def count(model, *conditions):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def test_a_rules_analysis_with_execute_is_decided_and_filled(caller, candles):
    response = caller.post("/api/v1/analyze", json={**RULES, "account_id": caller.account.id, "execute": True})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ok" and body["signal"]["action"] == "BUY"
    assert body["bar_time"] == "2024-01-12T16:00:00+00:00"
    assert (body["cost_usd"], body["cached"], body["provider"]) == ("0", False, "rules")
    decision = body["decision"]
    assert decision["approved"] is True
    assert decision["order"]["status"] == "closed" and Decimal(decision["order"]["filled"]) == Decimal("0.00084")
    assert Decimal(decision["order_spec"]["stop_loss"]) == Decimal("42434.55")

    listed = caller.get("/api/v1/analyses").json
    assert [item["id"] for item in listed["items"]] == [body["analysis_id"]]
    assert listed["items"][0]["action"] == "BUY" and listed["next_cursor"] is None
    detail = caller.get(f"/api/v1/analyses/{body['analysis_id']}").json
    assert detail["analysis_id"] == body["analysis_id"] and detail["signal"]["action"] == "BUY"
    assert detail["decisions"][0]["orders"][0]["fills"][0]["fee"]["currency"] == "USDT"


def test_execute_needs_the_trade_scope_and_an_account(api_app, caller, candles):
    analyst = ApiClient(api_app, issue(caller.user, ["analyze", "read"]))
    response = analyst.post("/api/v1/analyze", json={**RULES, "account_id": caller.account.id, "execute": True})
    assert response.status_code == 403 and response.json["error"]["details"]["required_scope"] == "trade"
    response = caller.post("/api/v1/analyze", json={**RULES, "execute": True})
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "execute"
    assert count(Order) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"signal_source": "deepseek"}, "max_cost_usd"),  # a paid model without a cost bound
        ({"signal_source": "oracle"}, "signal_source"),
        ({"signal_source": "rules:rsi_reversion -> rules:nope"}, "signal_source"),  # every strategy of a chain
        ({"max_cost_usd": "-1"}, "max_cost_usd"),
        ({"timeframe": "7m"}, "timeframe"),
        ({"symbol": "NOPE/USDT"}, "symbol"),
        ({"model": "deepseek-chat"}, "model"),  # a rules source has no model to set
        ({"max_cost": "1"}, "max_cost"),  # a typo is refused, never ignored
    ],
)
def test_bad_input_is_422_naming_the_field(caller, candles, change, field):
    response = caller.post("/api/v1/analyze", json={**RULES, **change})
    assert response.status_code == 422, response.json
    assert response.json["error"]["details"]["field"] == field
    assert count(Analysis) == 0


def test_another_users_account_is_404(caller, stranger, candles):
    response = caller.post("/api/v1/analyze", json={**RULES, "account_id": stranger.account.id})
    assert response.status_code == 404
    assert caller.get(f"/api/v1/analyses/{factories.analysis(db.session, stranger.user).id}").status_code == 404


def test_the_list_pages_with_a_cursor_filters_and_hides_other_users(caller, stranger):
    ids = [factories.analysis(db.session, caller.user, status=AnalysisStatus.OK).id for _ in range(5)]
    refused = factories.analysis(db.session, caller.user, status=AnalysisStatus.REFUSED, symbol="ETH/USDT").id
    factories.analysis(db.session, stranger.user)
    db.session.commit()

    first = caller.get("/api/v1/analyses?limit=4").json
    assert [item["id"] for item in first["items"]] == [refused, *reversed(ids[-3:])]
    second = caller.get(f"/api/v1/analyses?limit=4&cursor={first['next_cursor']}").json
    assert [item["id"] for item in second["items"]] == list(reversed(ids[:2])) and second["next_cursor"] is None

    only = caller.get("/api/v1/analyses?status=refused&symbol=eth/usdt").json["items"]
    assert [item["id"] for item in only] == [refused]
    response = caller.get("/api/v1/analyses?status=maybe")
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "status"


def test_an_idempotent_retry_returns_the_stored_answer_without_a_second_order(caller, candles):
    body = {**RULES, "account_id": caller.account.id, "execute": True}
    headers = {"Idempotency-Key": "buy-2024-01-12"}
    first = caller.post("/api/v1/analyze", json=body, headers=headers)
    again = caller.post("/api/v1/analyze", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert count(Analysis) == 1 and count(Order) == 1

    other = caller.post("/api/v1/analyze", json={**body, "execute": False}, headers=headers)
    assert other.status_code == 409 and other.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"

    refused = caller.post("/api/v1/analyze", json={**RULES, "timeframe": "7m"}, headers={"Idempotency-Key": "k2"})
    assert refused.status_code == 422
    fixed = caller.post("/api/v1/analyze", json={**RULES, "timeframe": "7m"}, headers={"Idempotency-Key": "k2"})
    assert fixed.status_code == 422  # an error frees its key: the retry ran again instead of replaying


# --- paid models: a fake DeepSeek on 127.0.0.1 -------------------------------------------------------------------


@pytest.fixture
def paid_app(empty_database, tmp_path, deepseek_server):
    app = create_app(
        environ=clean_environ(
            tmp_path,
            empty_database,
            STEADYHAND_MARKET="store",
            DEEPSEEK_API_KEY="sk-test-deepseek-key-0001",
            DEEPSEEK_BASE_URL=deepseek_server.url,
            STEADYHAND_API_RATE_LIMIT="100000 per minute",
            STEADYHAND_API_PAID_RATE_LIMIT="100000 per minute",
        )
    )
    with app.app_context():
        upgrade()
        factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_a_call_that_could_cost_more_than_max_cost_is_402_before_any_provider_call(paid_app, deepseek_server):
    user = factories.user(db.session)
    factories.paper_account(db.session, user)
    client = ApiClient(paid_app, issue(user, ["analyze"]))
    response = client.post("/api/v1/analyze", json={**RULES, "signal_source": "deepseek", "max_cost_usd": "0.000001"})
    assert response.status_code == 402
    error = response.json["error"]
    assert error["code"] == "BUDGET_EXCEEDED"
    assert error["details"]["cap_name"] == "per-request" and error["details"]["cap_usd"] == "0.000001"
    assert Decimal(error["details"]["estimate_usd"]) > Decimal("0.000001")
    assert deepseek_server.requests == []


def test_a_keys_daily_cap_holds_under_20_concurrent_requests(paid_app, deepseek_server):
    user = factories.user(db.session, daily_budget_usd=Decimal("100"))
    factories.paper_account(db.session, user)
    # Each call really costs $0.000405 off-peak ($0.00081 at peak) and reserves about 2.4x that: even calls made one
    # after another cannot all fit under this cap, so some must be refused however the threads interleave.
    cap = Decimal("0.004")
    token = issue(user, ["analyze"], daily_budget_usd=cap)
    deepseek_server.queue(*[answer(HOLD, usage=deepseek_usage(hit=0, miss=1_500, completion=300))] * 20)
    statuses: list[int] = []
    start = threading.Barrier(20)

    def ask(hour: int) -> None:
        client = ApiClient(paid_app, token)
        until = (datetime(2024, 2, 1, tzinfo=UTC) + timedelta(hours=hour)).isoformat()
        start.wait()
        with paid_app.app_context():
            body = {**RULES, "signal_source": "deepseek", "max_cost_usd": "1", "until": until}
            statuses.append(client.post("/api/v1/analyze", json=body).status_code)

    threads = [threading.Thread(target=ask, args=(hour,)) for hour in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(set(statuses)) == [200, 402]
    db.session.expire_all()
    entries = db.session.scalars(select(BudgetLedgerEntry)).all()
    committed = sum((entry.settled_usd or entry.reserved_usd) for entry in entries)
    assert committed <= cap
    assert len(deepseek_server.requests) == statuses.count(200) == len(entries)
    assert statuses.count(402) >= 1 and statuses.count(200) >= 1


def test_on_the_replay_market_the_latest_bar_is_the_replays(app):
    """The default market: "now" is the replay's clock, not the wall's (which is past its data)."""
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    client = ApiClient(app, issue(user, ["analyze"]))
    body = {"symbol": "BTC/USDT", "signal_source": "rules:rsi_reversion", "account_id": account.id}
    response = client.post("/api/v1/analyze", json=body)
    assert response.status_code == 200, response.json
    assert response.json["bar_time"].startswith("2024-") and response.json["status"] == "ok"
