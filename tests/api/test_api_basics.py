"""What every /api/v1 request goes through: the key, the scope, the error shape, unknown routes, the document."""

from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.services import api_keys
from app.services.api_keys import SCOPES
from tests import factories
from tests.api.conftest import ApiClient, issue


def test_no_key_malformed_key_revoked_key_are_401_with_one_shape(api_app, caller):
    anonymous = ApiClient(api_app, None)
    for client, token in ((anonymous, None), (anonymous, "sh_nope"), (anonymous, "Bearer")):
        response = client.get("/api/v1/analyses", token=token)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "UNAUTHORIZED"
        assert set(response.json["error"]) == {"code", "message", "details"}

    key = api_keys.list_keys(db.session, caller.user.id)[0]
    api_keys.revoke_key(db.session, caller.user.id, key.id, datetime.now(UTC))
    db.session.commit()
    assert caller.get("/api/v1/analyses").status_code == 401


def test_an_expired_key_is_refused(api_app):
    user = factories.user(db.session)
    token = issue(user, ["read"], expires_in_days=1)
    key = api_keys.list_keys(db.session, user.id)[0]
    key.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    assert ApiClient(api_app, token).get("/api/v1/analyses").status_code == 401


def test_a_key_without_the_scope_is_403_naming_it(api_app):
    user = factories.user(db.session)
    reader = ApiClient(api_app, issue(user, ["read"]))
    response = reader.post("/api/v1/analyze", json={"symbol": "BTC/USDT", "signal_source": "rules:rsi_reversion"})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "MISSING_SCOPE"
    assert response.json["error"]["details"]["required_scope"] == "analyze"


def test_unknown_paths_and_methods_answer_json(caller):
    response = caller.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"
    response = caller.delete("/api/v1/analyses")
    assert response.status_code == 405 and response.json["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_validation_errors_name_the_field_and_value(caller):
    response = caller.get("/api/v1/analyses?limit=0")
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "INVALID_INPUT" and error["details"]["field"] == "limit"
    assert '"0"' in error["message"]
    response = caller.get("/api/v1/analyses?cursor=garbage")
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "cursor"


def test_the_openapi_document_is_3_1_with_the_bearer_scheme(api_app):
    document = api_app.test_client().get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/api/v1/analyze" in document["paths"]
    assert api_app.test_client().get("/api/v1/swagger").status_code == 200


def test_every_route_declares_its_scope(api_app):
    """A route without `@guard.requires` would be refused to every key but admin: none may be forgotten."""
    routes = {name: view for name, view in api_app.view_functions.items() if name.startswith("api.")}
    assert len(routes) >= 25
    assert {name for name, view in routes.items() if getattr(view, "api_scope", None) not in SCOPES} == set()
    reads = {name for name, view in routes.items() if view.api_scope == "read"}
    assert "api.list_analyses" in reads and "api.analyze" not in reads


def test_a_nul_character_anywhere_is_422_naming_the_field(caller):
    response = caller.get("/api/v1/analyses?symbol=BTC/%00USDT")
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "symbol"
    response = caller.post(f"/api/v1/accounts/{caller.account.id}/kill-switch", json={"reason": "nul \u0000 byte"})
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "reason"
    response = caller.post("/api/v1/analyze", json={"symbol": "BTC/USDT", "params": {"fa\u0000st": "5"}})
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "params.fa\u0000st"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [('{"symbol": "BTC/USDT",', "application/json"), ("not json", "text/plain"), ('"text"', "application/json")],
)
def test_a_body_that_is_no_json_object_says_so(caller, data, content_type):
    response = caller.post("/api/v1/analyze", data=data, headers={"Content-Type": content_type})
    assert response.status_code == 422
    assert response.json["error"]["message"] == (
        "body: must be a JSON object, sent with Content-Type: application/json"
    )


@pytest.mark.parametrize(("change", "field"), [({"execute": "yes"}, "execute"), ({"account_id": True}, "account_id")])
def test_flags_and_ids_in_a_body_take_json_types_only(caller, change, field):
    response = caller.post("/api/v1/analyze", json={"symbol": "BTC/USDT", "signal_source": "rules:sma_cross", **change})
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == field


def test_a_body_over_1_mb_is_413(caller):
    response = caller.post("/api/v1/analyze", json={"symbol": "x" * (1024 * 1024)})
    assert response.status_code == 413 and response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_the_docs_page_never_asks_an_outside_validator(api_app):
    assert '"validatorUrl": null' in api_app.test_client().get("/api/v1/swagger").get_data(as_text=True)
