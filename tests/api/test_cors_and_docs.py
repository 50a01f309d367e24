"""Browsers: CORS only for configured origins (none by default); the API's docs page is served by the app itself."""

import re

import pytest
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from tests import factories
from tests.api.conftest import ApiClient, issue
from tests.conftest import clean_environ

ALLOWED = "https://app.example.com"


@pytest.fixture
def cors_app(tmp_path):
    environ = clean_environ(tmp_path, f"sqlite:///{tmp_path / 'cors.db'}", STEADYHAND_CORS_ORIGINS=ALLOWED)
    app = create_app(environ=environ)
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def preflight(app, origin):
    return app.test_client().options(
        "/api/v1/analyses",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )


def test_only_configured_origins_may_call_from_a_browser(cors_app):
    allowed = preflight(cors_app, ALLOWED)
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Origin" not in preflight(cors_app, "https://evil.example").headers

    user = factories.user(db.session)
    client = ApiClient(cors_app, issue(user, ["read"]))
    response = client.get("/api/v1/analyses", headers={"Origin": ALLOWED})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_no_origin_is_allowed_by_default(api_app):
    assert "Access-Control-Allow-Origin" not in preflight(api_app, ALLOWED).headers


def test_the_docs_page_loads_only_assets_the_app_serves(api_app):
    client = api_app.test_client()
    page = client.get("/api/v1/swagger")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and not [asset for asset in assets if asset.startswith(("http:", "https:", "//"))]
    for asset in assets:
        assert client.get(f"/api/v1/{asset}").status_code == 200, asset
