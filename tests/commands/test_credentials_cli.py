"""`credentials set-llm-key`: a user's own provider key, prompted, stored encrypted, shown masked, and used."""

from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import LlmCredential
from app.services.credentials import provider_keys
from tests import factories

KEY = "sk-user-own-key-0123456789"


def test_a_stored_key_is_encrypted_masked_and_replaced_not_duplicated(app):
    user = factories.user(db.session, email="keys@example.com")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["credentials", "set-llm-key", "--provider", "deepseek"], input=f"{KEY}\n")
    assert result.exit_code == 0, result.output
    assert KEY not in result.output and "deepseek key sk******6789 stored (encrypted)" in result.output
    [stored] = db.session.scalars(select(LlmCredential)).all()
    assert KEY not in stored.api_key_encrypted
    assert provider_keys(db.session, current_settings(), user.id)["deepseek"] == KEY

    runner.invoke(args=["credentials", "set-llm-key", "--provider", "deepseek"], input="sk-second-key-999999\n")
    db.session.expire_all()
    assert db.session.scalars(select(LlmCredential)).one().api_key_hint == "sk******9999"


def test_an_empty_key_is_refused(app):
    factories.user(db.session, email="keys@example.com")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["credentials", "set-llm-key", "--provider", "claude", "--api-key", " "])
    assert result.exit_code == 1 and "api_key must not be empty [--api-key]" in result.output
    assert db.session.scalars(select(LlmCredential)).all() == []
