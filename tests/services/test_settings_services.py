"""What the settings pages read and change: LLM keys listed masked and deleted, accounts with their trading state,
the models an API key may be limited to."""

from datetime import UTC, datetime

import pytest

from app import current_settings
from app.errors import NotFoundError
from app.extensions import db
from app.services import accounts, api_keys, credentials, kill_switch
from exchanges.vault import mask_secret
from risk import TradingState
from tests import factories

KEY = "sk-ant-secret-1234567890abcdef"


def test_llm_keys_are_listed_masked_and_deleted_by_their_owner_only(app):
    owner, other = factories.user(db.session), factories.user(db.session)
    credentials.store_llm_key(db.session, current_settings(), owner.id, "claude", KEY)
    credentials.store_llm_key(db.session, current_settings(), owner.id, "deepseek", "sk-deepseek-0987654321")
    [first, second] = credentials.llm_keys(db.session, owner.id)
    assert (first.provider, second.provider) == ("deepseek", "claude")  # LLM_PROVIDERS order
    assert second.hint == mask_secret(KEY) and KEY not in repr(second)
    assert credentials.llm_keys(db.session, other.id) == []
    with pytest.raises(NotFoundError) as raised:
        credentials.delete_llm_key(db.session, other.id, "claude")
    assert raised.value.field == "provider"
    removed = credentials.delete_llm_key(db.session, owner.id, " Claude ")
    assert removed.provider == "claude"
    assert [key.provider for key in credentials.llm_keys(db.session, owner.id)] == ["deepseek"]


def test_trading_statuses_give_every_account_with_why_it_stopped(app):
    user = factories.user(db.session)
    first = factories.paper_account(db.session, user, name="One")
    second = factories.paper_account(db.session, user, name="Two")
    factories.paper_account(db.session, factories.user(db.session), name="Not mine")
    kill_switch.engage_account(db.session, user.id, second.id, "checking", datetime.now(UTC))
    statuses = accounts.trading_statuses(db.session, user.id)
    assert [(s.account.id, s.trading_state, s.state_reason) for s in statuses] == [
        (first.id, TradingState.ACTIVE, None),
        (second.id, TradingState.HALTED, "kill switch: checking"),
    ]


def test_model_choices_are_known_provider_models_a_key_accepts(app):
    choices = api_keys.model_choices()
    assert choices and all(choice.split(":")[0] in ("deepseek", "claude") for choice in choices)
    user = factories.user(db.session)
    issued = api_keys.issue_key(db.session, user.id, "all", ["read"], datetime.now(UTC), allowed_models=choices)
    assert api_keys.allowed_models(issued.key) == choices
