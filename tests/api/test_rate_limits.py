"""Per-key rate limits: a general one for every route, a stricter shared one for the routes that may pay for AI."""

import pytest
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from tests import factories
from tests.api.conftest import ApiClient, issue
from tests.conftest import clean_environ


@pytest.fixture
def limited_app(tmp_path):
    app = create_app(
        environ=clean_environ(
            tmp_path,
            f"sqlite:///{tmp_path / 'limits.db'}",
            STEADYHAND_MARKET="store",
            STEADYHAND_API_RATE_LIMIT="4 per minute",
            STEADYHAND_API_PAID_RATE_LIMIT="2 per minute",
        )
    )
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_each_key_has_its_own_budget_of_requests_and_429_says_when_to_retry(limited_app):
    user = factories.user(db.session)
    first, second = ApiClient(limited_app, issue(user, ["read"])), ApiClient(limited_app, issue(user, ["read"]))
    statuses = [first.get("/api/v1/analyses").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    refused = first.get("/api/v1/analyses")
    assert refused.json["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) > 0
    assert second.get("/api/v1/analyses").status_code == 200


def test_paid_routes_share_a_stricter_limit(limited_app):
    user = factories.user(db.session)
    factories.paper_account(db.session, user)
    client = ApiClient(limited_app, issue(user, ["analyze", "read"]))
    body = {"symbol": "BTC/USDT", "signal_source": "rules:rsi_reversion"}
    statuses = [client.post("/api/v1/analyze", json=body).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert client.get("/api/v1/analyses").status_code == 200  # the general limit still has room
