"""API keys at their service, on SQLite and PostgreSQL: issued once and stored as a hash, scoped, expiring and
revocable; a malformed key is refused without a lookup. The token format's checksum property-tested."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ai.budget import BudgetCaps, BudgetScope
from app.errors import InvalidInputError, NotFoundError
from app.extensions import db
from app.models import ApiKey, AuditEvent
from app.persistence.budget_ledger import SqlBudgetLedger
from app.services import api_keys
from app.services.api_keys import UnauthorizedError
from tests import factories

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def owner(app):
    user = factories.user(db.session)
    db.session.commit()
    return user


def issue(user, scopes=("read",), **fields):
    issued = api_keys.issue_key(db.session, user.id, fields.pop("name", "script"), scopes, NOW, **fields)
    db.session.commit()
    return issued


def test_a_key_is_shown_once_and_only_its_hash_is_stored(owner):
    issued = issue(owner, scopes=["Analyze", "read", "read"], expires_in_days=30)
    token, key = issued.token, issued.key
    assert token.startswith("sh_") and len(token) == 39 and api_keys.looks_like_key(token)
    stored = db.session.scalars(select(ApiKey)).one()
    assert stored.key_hash == api_keys.token_hash(token) != token
    assert token not in (stored.prefix, stored.key_hash, stored.name, stored.scopes)
    assert (stored.prefix, stored.scopes, stored.expires_at) == (token[:9], "read analyze", NOW + timedelta(days=30))
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert event.message == f"API key #{key.id} (script, {token[:9]}...) created with scopes read analyze"
    assert token not in str(event.details)


def test_a_live_key_authenticates_and_its_use_is_stamped(owner):
    issued = issue(owner, scopes=["read", "analyze"])
    later = NOW + timedelta(hours=1)
    key = api_keys.authenticate(db.session, issued.token, later)
    assert (key.id, key.last_used_at) == (issued.key.id, later)
    assert api_keys.has_scope(key, "analyze") and not api_keys.has_scope(key, "trade")


def test_the_last_use_is_written_once_a_minute_per_address(owner):
    token = issue(owner).token
    first = NOW + timedelta(hours=1)
    api_keys.authenticate(db.session, token, first, address="10.0.0.1")
    key = api_keys.authenticate(db.session, token, first + timedelta(seconds=59), address="10.0.0.1")
    assert (key.last_used_at, key.last_used_address) == (first, "10.0.0.1")
    moved = first + timedelta(seconds=61)
    key = api_keys.authenticate(db.session, token, moved - timedelta(seconds=30), address="10.0.0.2")
    assert (key.last_used_at, key.last_used_address) == (moved - timedelta(seconds=30), "10.0.0.2")
    key = api_keys.authenticate(db.session, token, moved + timedelta(seconds=30), address="10.0.0.2")
    assert key.last_used_at == moved + timedelta(seconds=30)


def test_admin_carries_every_scope(owner):
    key = issue(owner, scopes=["admin"]).key
    assert all(api_keys.has_scope(key, scope) for scope in api_keys.SCOPES)


@pytest.mark.parametrize("token", [None, "", "Bearer", "sh_short", "gh_" + "a" * 36, "sh_" + "!" * 36])
def test_a_missing_or_malformed_key_is_refused(owner, token):
    with pytest.raises(UnauthorizedError) as refused:
        api_keys.authenticate(db.session, token, NOW)
    assert (refused.value.code, refused.value.http_status) == ("UNAUTHORIZED", 401)


def test_an_unknown_expired_or_revoked_key_is_refused_alike(owner):
    unknown = api_keys._new_token()  # well formed, never issued
    expiring = issue(owner, name="a month", expires_in_days=30)
    revoked = issue(owner, name="old")
    api_keys.revoke_key(db.session, owner.id, revoked.key.id, NOW)
    db.session.commit()
    messages = set()
    for token, at in ((unknown, NOW), (expiring.token, NOW + timedelta(days=30)), (revoked.token, NOW)):
        with pytest.raises(UnauthorizedError) as refused:
            api_keys.authenticate(db.session, token, at)
        messages.add(refused.value.message)
    assert messages == {"a valid API key is required: Authorization: Bearer sh_..."}  # nothing tells them apart
    assert api_keys.authenticate(db.session, expiring.token, NOW + timedelta(days=29)).id == expiring.key.id


def test_revoking_is_audited_once_and_someone_elses_key_is_not_found(owner):
    key = issue(owner).key
    api_keys.revoke_key(db.session, owner.id, key.id, NOW)
    api_keys.revoke_key(db.session, owner.id, key.id, NOW + timedelta(days=1))
    db.session.commit()
    assert db.session.get(ApiKey, key.id).revoked_at == NOW
    events = db.session.scalars(select(AuditEvent.event).order_by(AuditEvent.id)).all()
    assert events == ["api_key.created", "api_key.revoked"]
    stranger = factories.user(db.session)
    db.session.commit()
    with pytest.raises(NotFoundError, match=f"no api_key #{key.id}"):
        api_keys.revoke_key(db.session, stranger.id, key.id, NOW)
    assert [k.id for k in api_keys.list_keys(db.session, owner.id)] == [key.id]
    assert api_keys.list_keys(db.session, stranger.id) == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "  "}, "name", "name must be 1 to 80 characters, got ''"),
        ({"scopes": ["write"]}, "scope", 'scope must be one of read, analyze, trade, admin, got "write"'),
        ({"scopes": []}, "scope", "scope must name at least one of read, analyze, trade, admin"),
        ({"expires_in_days": 0}, "expires", 'expires must be a whole number of days of 1 or more, got "0"'),
        ({"daily_budget_usd": Decimal(0)}, "daily_budget", 'daily_budget must be a positive amount in USD, got "0"'),
        (
            {"monthly_budget_usd": Decimal("-5")},
            "monthly_budget",
            'monthly_budget must be a positive amount in USD, got "-5"',
        ),
        (
            {"daily_budget_usd": Decimal("Infinity")},
            "daily_budget",
            'daily_budget must be a positive amount in USD, got "Infinity"',
        ),
        (
            {"monthly_budget_usd": Decimal("1e9")},
            "monthly_budget",
            'monthly_budget must be at most 1,000,000 USD, got "1E+9"',
        ),
        (
            {"daily_budget_usd": Decimal(5), "monthly_budget_usd": Decimal(1)},
            "daily_budget",
            "daily_budget 5 is more than the monthly cap 1 USD: a day could never spend it",
        ),
        (
            {"allowed_models": ["openai:gpt-5"]},
            "model",
            'model must be provider:model with a provider of deepseek, claude, got "openai:gpt-5"',
        ),
        (
            {"allowed_models": ["deepseek"]},
            "model",
            'model must be provider:model with a provider of deepseek, claude, got "deepseek"',
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(owner, fields, field, message):
    with pytest.raises(InvalidInputError) as refused:
        issue(owner, **fields)
    assert (refused.value.field, refused.value.message) == (field, message)
    db.session.rollback()
    assert db.session.scalars(select(ApiKey)).all() == []


def test_an_unknown_model_of_a_known_provider_is_refused_naming_it(owner):
    with pytest.raises(InvalidInputError) as refused:
        issue(owner, allowed_models=["claude:claude-haiku-9"])
    assert refused.value.field == "model"
    assert refused.value.message.startswith('model "claude:claude-haiku-9": unknown claude model')


def test_a_keys_caps_and_models_are_stored_and_audited(owner):
    key = issue(
        owner,
        daily_budget_usd=Decimal("0.50"),
        monthly_budget_usd=Decimal("5"),
        allowed_models=[" DeepSeek:deepseek-flash", "claude:claude-haiku-5-5", "deepseek:deepseek-flash"],
    ).key
    stored = db.session.get(ApiKey, key.id)
    assert (stored.daily_budget_usd, stored.monthly_budget_usd) == (Decimal("0.5"), Decimal(5))
    assert stored.allowed_models == "deepseek:deepseek-flash claude:claude-haiku-5-5"
    assert api_keys.allowed_models(stored) == ["deepseek:deepseek-flash", "claude:claude-haiku-5-5"]
    event = db.session.scalars(select(AuditEvent)).one()
    assert event.details["daily_budget_usd"] == "0.5" and event.details["monthly_budget_usd"] == "5"
    assert event.details["allowed_models"] == ["deepseek:deepseek-flash", "claude:claude-haiku-5-5"]

    plain = issue(owner, name="plain").key
    assert (plain.daily_budget_usd, plain.monthly_budget_usd, plain.allowed_models) == (None, None, None)
    assert api_keys.allowed_models(plain) is None


def test_authenticate_stamps_the_address_it_was_used_from(owner):
    issued = issue(owner)
    assert api_keys.authenticate(db.session, issued.token, NOW).last_used_address is None
    key = api_keys.authenticate(db.session, issued.token, NOW, address="2001:db8::7")
    db.session.commit()
    assert db.session.get(ApiKey, key.id).last_used_address == "2001:db8::7"


def test_spent_by_key_counts_that_keys_settled_and_reserved_calls_today_and_this_month(owner):
    ledger = SqlBudgetLedger(db.engine)
    key, other = issue(owner).key.id, issue(owner, name="other").key.id
    scope = BudgetScope(owner.id, api_key_id=key)
    earlier = NOW - timedelta(hours=13)  # 2026-11-30: last month
    ledger.settle(ledger.reserve(scope, BudgetCaps(), Decimal("1"), "deepseek", "m", earlier), Decimal("1"), earlier)
    yesterday_this_month = datetime(2026, 12, 3, tzinfo=UTC)
    later = datetime(2026, 12, 4, 12, tzinfo=UTC)
    ledger.settle(
        ledger.reserve(scope, BudgetCaps(), Decimal("0.3"), "deepseek", "m", yesterday_this_month),
        Decimal("0.2"),
        yesterday_this_month,
    )
    ledger.reserve(scope, BudgetCaps(), Decimal("0.05"), "deepseek", "m", later)
    ledger.release(ledger.reserve(scope, BudgetCaps(), Decimal("0.7"), "deepseek", "m", later), later)
    ledger.reserve(BudgetScope(owner.id, api_key_id=other), BudgetCaps(), Decimal("0.4"), "deepseek", "m", later)
    ledger.reserve(BudgetScope(owner.id), BudgetCaps(), Decimal("0.4"), "deepseek", "m", later)
    assert api_keys.spent_by_key(db.session, key, later) == (Decimal("0.05"), Decimal("0.25"))
    assert api_keys.spent_by_key(db.session, other, later) == (Decimal("0.4"), Decimal("0.4"))


@given(st.data())
def test_any_one_character_changed_breaks_the_checksum(data):
    token = api_keys._new_token()
    assert api_keys.looks_like_key(token)
    position = data.draw(st.integers(min_value=3, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != token[position]]))
    assert not api_keys.looks_like_key(token[:position] + replacement + token[position + 1 :])
