"""A key's allowed models and own caps hold for everything it starts: watches (and their later runs) and backtests,
not only POST /analyze."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import Analysis, Watch
from app.services import credentials
from tests import factories
from tests.api.conftest import ApiClient, issue

WATCH = {"symbol": "BTC/USDT", "timeframe": "1h"}
BACKTEST = {"symbol": "BTC/USDT", "timeframe": "1h", "start": "2024-03-01", "end": "2024-03-03"}


@pytest.fixture
def scripted(api_app):
    """A user with their own (stored) DeepSeek key, BTC/USDT 1h candles, and a client whose key may ask only
    deepseek:deepseek-flash and spend one millionth of a dollar a day."""
    user = factories.user(db.session)
    factories.paper_account(db.session, user)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    credentials.store_llm_key(db.session, current_settings(), user.id, "deepseek", "sk-test-deepseek-key-0001")
    db.session.commit()
    token = issue(
        user, ["read", "analyze"], allowed_models=["deepseek:deepseek-flash"], daily_budget_usd=Decimal("0.000001")
    )
    client = ApiClient(api_app, token)
    client.user = user
    return client


def test_a_watch_may_use_only_the_keys_models(scripted):
    refused = scripted.post("/api/v1/watches", json={**WATCH, "signal_source": "claude"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "MODEL_NOT_ALLOWED"
    created = scripted.post("/api/v1/watches", json={**WATCH, "signal_source": "deepseek:deepseek-flash"})
    assert created.status_code == 201, created.json
    watch_id = created.json["id"]
    changed = scripted.patch(f"/api/v1/watches/{watch_id}", json={"signal_source": "deepseek:deepseek-v4-pro"})
    assert changed.status_code == 403 and changed.json["error"]["code"] == "MODEL_NOT_ALLOWED"
    db.session.expire_all()
    assert db.session.get(Watch, watch_id).signal_source == "deepseek:deepseek-flash"


def test_a_watch_created_through_a_key_runs_under_the_keys_caps(scripted):
    watch_id = scripted.post("/api/v1/watches", json={**WATCH, "signal_source": "deepseek:deepseek-flash"}).json["id"]
    run = scripted.post(f"/api/v1/watches/{watch_id}/run")
    assert run.status_code == 200, run.json
    db.session.expire_all()
    analysis = db.session.scalars(select(Analysis).where(Analysis.watch_id == watch_id)).one()
    assert analysis.status.value == "refused" and analysis.error_code == "BUDGET_EXCEEDED"
    assert "API key daily cap" in analysis.error_message


def test_a_backtest_may_use_only_the_keys_models_and_must_fit_its_caps(scripted):
    refused = scripted.post("/api/v1/backtests", json={**BACKTEST, "signal_source": "claude", "max_cost_usd": "1"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "MODEL_NOT_ALLOWED"
    over = scripted.post(
        "/api/v1/backtests", json={**BACKTEST, "signal_source": "deepseek:deepseek-flash", "max_cost_usd": "1"}
    )
    assert over.status_code == 402, over.json
    assert over.json["error"]["details"]["field"] == "max_cost_usd"
    assert over.json["error"]["details"]["cap_usd"] == "0.000001"
    free = scripted.post("/api/v1/backtests", json={**BACKTEST, "signal_source": "rules:sma_cross"})
    assert free.status_code == 202
