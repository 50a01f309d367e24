"""schemathesis against the served OpenAPI document: generated requests, valid and invalid, to every operation with a
key holding every scope and real data behind it. No response may be a server error, and every response must be one
the document declares: status, content type and body schema.

schemathesis' own pytest plugin (`from_fixture`) does not run under pytest 9 (it sets `Function._nodeid`, which pytest 9
no longer has), so each operation is a test of ours driving the operation's hypothesis strategy directly.

`positive_data_acceptance` (a request the document allows must succeed) is left out: the document describes shapes,
while the services still refuse what only data can tell apart (an unknown symbol, a cursor this API never issued, a
budget of "" that is a string but no amount), always with a documented 4xx. `negative_data_rejection` stays: a request
the document forbids must never succeed.
"""

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app import create_app
from app.extensions import db
from tests import factories
from tests.api.conftest import issue
from tests.conftest import clean_environ

# Per operation, mode and backend: enough to reach each model's validation branches, bounded to keep `make test` short.
EXAMPLES = 10


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the document declares; reading it needs no database."""
    folder = Path(tempfile.mkdtemp(prefix="steadyhand-openapi-"))
    app = create_app(environ=clean_environ(folder, f"sqlite:///{folder / 'unused.db'}"))
    document = app.test_client().get("/api/v1/openapi.json").json
    return sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)


@pytest.fixture
def fuzzed(api_app):
    """A user with an account, a watch, an analysis and the bundled BTC/USDT 1h candles, and an admin key."""
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    factories.watch(db.session, user, account)
    factories.analysis(db.session, user, account)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return api_app, issue(user, ["admin"])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_server_errors_and_every_response_matches_the_document(fuzzed, method, path, mode):
    app, token = fuzzed
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    )
    def call(case):
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    call()
