"""The API keys page: create (key shown once), list, revoke; another user's key is a 404."""

import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.extensions import db
from app.services import api_keys
from tests.web.helpers import csrf_token, post_form

NEW = {"name": "my script", "scopes": ["read", "analyze"], "daily_budget_usd": "0.50", "monthly_budget_usd": "5"}


def test_the_page_needs_sign_in(client):
    response = client.get("/api-keys")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_an_empty_list_says_what_to_do(signed_in):
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert "No API keys yet: create one below" in page
    assert re.search(r'<input checked id="scopes-0" name="scopes" type="checkbox" value="read">', page)


def test_a_key_is_shown_once_then_only_its_prefix(signed_in, ada, caplog):
    caplog.set_level(logging.DEBUG)
    model = api_keys.model_choices()[0]
    response = post_form(signed_in, "/api-keys", {**NEW, "allowed_models": [model], "expires_in_days": "30"})
    page = response.get_data(as_text=True)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    token = re.search(r'data-testid="new-key-token">(sh_[0-9A-Za-z]+)<', page).group(1)
    assert api_keys.looks_like_key(token)
    [key] = api_keys.list_keys(db.session, ada.id)
    assert (key.scopes, key.daily_budget_usd, key.monthly_budget_usd) == ("read analyze", Decimal("0.5"), Decimal(5))
    assert api_keys.allowed_models(key) == [model]
    assert key.expires_at is not None

    later = signed_in.get("/api-keys").get_data(as_text=True)
    assert token not in later
    assert f"{key.prefix}…" in later
    assert "read, analyze" in later and "$0.5000 a day" in later and "$5.00 a month" in later
    assert model in later and "Never used" in later and "Active" in later
    assert token not in caplog.text
    assert api_keys.authenticate(db.session, token, datetime.now(UTC)).id == key.id
    with signed_in.session_transaction() as session:
        assert token not in repr(dict(session))


def test_reloading_the_answer_that_shows_a_key_does_not_create_another(signed_in, ada):
    page = signed_in.get("/api-keys").get_data(as_text=True)
    sent = {
        **NEW,
        "csrf_token": re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1),
        "request_id": re.search(r'name="request_id"[^>]*?value="([^"]+)"', page).group(1),
    }
    first = signed_in.post("/api-keys", data=sent)
    assert first.status_code == 201
    again = signed_in.post("/api-keys", data=sent)  # what a reload of the 201 page sends
    assert again.status_code == 302 and again.headers["Location"] == "/api-keys"
    assert len(api_keys.list_keys(db.session, ada.id)) == 1
    assert "already sent and its key created" in signed_in.get("/api-keys").get_data(as_text=True)
    fresh = re.search(r'name="request_id"[^>]*?value="([^"]+)"', first.get_data(as_text=True)).group(1)
    assert fresh != sent["request_id"]
    assert signed_in.post("/api-keys", data={**sent, "request_id": fresh}).status_code == 201
    assert len(api_keys.list_keys(db.session, ada.id)) == 2


def test_last_use_shows_its_time_and_address(signed_in, ada):
    issued = api_keys.issue_key(db.session, ada.id, "bot", ["read"], datetime.now(UTC))
    api_keys.authenticate(db.session, issued.token, datetime(2026, 11, 30, 9, 15, tzinfo=UTC), "203.0.113.7")
    db.session.commit()
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert "2026-11-30 09:15 UTC" in page and "from 203.0.113.7" in page
    assert "Your budgets only" in page and "any model" in page and ">Never<" in page


def test_bad_input_is_refused_on_its_field_with_what_was_typed(signed_in, ada):
    response = post_form(signed_in, "/api-keys", {**NEW, "daily_budget_usd": "-2"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="daily_budget_usd-error"' in page
    assert "Daily cap (USD) must be a positive amount in USD, got &#34;-2&#34;" in page
    assert 'value="-2"' in page and 'value="my script"' in page
    response = post_form(signed_in, "/api-keys", {**NEW, "scopes": []})
    assert response.status_code == 400
    assert "Scopes must name at least one of read, analyze, trade, admin" in response.get_data(as_text=True)
    response = post_form(signed_in, "/api-keys", {**NEW, "expires_in_days": "0"})
    assert response.status_code == 400
    assert "Expires after (days) must be a whole number of days from 1 to 3650, got &#34;0&#34;" in (
        response.get_data(as_text=True)
    )
    response = post_form(signed_in, "/api-keys", {**NEW, "name": ""})
    assert response.status_code == 400
    assert "Enter a name that says what the key is for." in response.get_data(as_text=True)
    assert api_keys.list_keys(db.session, ada.id) == []


def test_a_key_is_revoked(signed_in, ada):
    issued = api_keys.issue_key(db.session, ada.id, "old", ["read"], datetime.now(UTC) - timedelta(days=1))
    db.session.commit()
    response = post_form(signed_in, f"/api-keys/{issued.key.id}/revoke", {}, "/api-keys")
    assert response.status_code == 302
    db.session.expire_all()
    assert api_keys.list_keys(db.session, ada.id)[0].revoked_at is not None
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert f"API key #{issued.key.id} old ({issued.key.prefix}...) revoked" in page
    assert "Revoked" in page


def test_forms_without_a_csrf_token_are_refused(signed_in, ada):
    issued = api_keys.issue_key(db.session, ada.id, "kept", ["read"], datetime.now(UTC))
    db.session.commit()
    csrf_token(signed_in, "/api-keys")
    assert signed_in.post("/api-keys", data=NEW).status_code == 400
    assert signed_in.post(f"/api-keys/{issued.key.id}/revoke").status_code == 400
    db.session.expire_all()
    assert [key.revoked_at for key in api_keys.list_keys(db.session, ada.id)] == [None]


def test_another_users_key_is_a_404_and_never_listed(signed_in, ada, stranger):
    theirs = api_keys.issue_key(db.session, stranger.id, "eve's", ["admin"], datetime.now(UTC))
    db.session.commit()
    assert post_form(signed_in, f"/api-keys/{theirs.key.id}/revoke", {}, "/api-keys").status_code == 404
    db.session.expire_all()
    assert api_keys.list_keys(db.session, stranger.id)[0].revoked_at is None
    assert theirs.key.prefix not in signed_in.get("/api-keys").get_data(as_text=True)
