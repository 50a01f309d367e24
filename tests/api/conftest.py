"""The REST API under test: an app on each backend whose market is the offline candle store, and a client that sends
an API key."""

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from app.extensions import db
from app.services import api_keys
from tests import factories
from tests.conftest import emptied_after, migrated_apps


@pytest.fixture(scope="session")
def api_app_factory(tmp_path_factory):
    """One app per backend, migrated once; the market is the candle store so analyses read the bundled candles.
    Limits are high enough for the fuzzer's hundreds of requests per key; test_rate_limits builds its own app."""
    yield from migrated_apps(
        tmp_path_factory,
        "api",
        STEADYHAND_MARKET="store",
        STEADYHAND_API_RATE_LIMIT="100000 per minute",
        STEADYHAND_API_PAID_RATE_LIMIT="100000 per minute",
    )


@pytest.fixture
def api_app(api_app_factory, backend: str) -> Iterator[Flask]:
    yield from emptied_after(api_app_factory(backend))


class ApiClient:
    """Flask's test client with `Authorization: Bearer <token>` on every request (unless `token=None` is passed)."""

    def __init__(self, app: Flask, token: str | None) -> None:
        self.client = app.test_client()
        # Each client calls from its own address, so limits counted by address never leak between tests.
        self.client.environ_base["REMOTE_ADDR"] = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
        self.token = token

    def request(self, method: str, path: str, *, token: Any = ..., headers: dict[str, str] | None = None, **kwargs):
        token = self.token if token is ... else token
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=sent, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


def issue(user, scopes: Iterable[str] = ("read",), **options: Any) -> str:
    """A committed key of `user` with `scopes`; `options` go to `api_keys.issue_key` (caps, expiry)."""
    name = f"test key {uuid.uuid4().hex[:6]}"
    issued = api_keys.issue_key(db.session, user.id, name, scopes, datetime.now(UTC), **options)
    db.session.commit()
    return issued.token


@pytest.fixture
def caller(api_app):
    """A user with a 100 USDT paper account, and a client holding an admin key of theirs (every scope)."""
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    db.session.commit()
    client = ApiClient(api_app, issue(user, ["admin"]))
    client.user, client.account = user, account
    return client


@pytest.fixture
def stranger(api_app):
    """Another user with an account and an admin key: their ids must be 404 to `caller` and the reverse."""
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    db.session.commit()
    client = ApiClient(api_app, issue(user, ["admin"]))
    client.user, client.account = user, account
    return client
