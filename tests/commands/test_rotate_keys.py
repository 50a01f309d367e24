"""`rotate-keys` on both databases: everything moves to the new key, or nothing does."""

import pytest
from flask_migrate import upgrade
from sqlalchemy import select, text

from app import create_app
from app.extensions import db
from app.models import ExchangeCredential, LlmCredential, NotificationChannel
from exchanges.vault import CredentialVault, VaultDecryptionError, generate_key
from tests import factories
from tests.conftest import clean_environ

OLD, NEW, STRANGER = generate_key(), generate_key(), generate_key()


@pytest.fixture
def database(empty_database, tmp_path):
    return empty_database, tmp_path


def app_with(database, *keys):
    url, tmp_path = database
    app = create_app(environ=clean_environ(tmp_path, url, STEADYHAND_ENCRYPTION_KEYS=",".join(keys)))
    with app.app_context():
        upgrade()
    return app


def store_secrets(app, key):
    vault = CredentialVault([key])
    with app.app_context():
        user = factories.user(db.session, email="k@example.com", password=None, display_name="K")
        factories.exchange_credential(
            db.session,
            user,
            api_key="binance-key-abcdef",
            api_secret="binance-secret-123456",
            vault=vault,
            label="main",
        )
        db.session.add(
            LlmCredential(
                user_id=user.id,
                provider="deepseek",
                api_key_encrypted=vault.encrypt("sk-deepseek-own"),
                api_key_hint="sk******-own",
            )
        )
        db.session.add(
            NotificationChannel(
                user_id=user.id,
                kind="webhook",
                label="hook",
                target_encrypted=vault.encrypt("https://hooks.example.com/steadyhand"),
                target_hint="https://ho******hand",
                secret_encrypted=vault.encrypt("whsec_signing-secret"),
                events=[],
            )
        )
        db.session.commit()


def test_rotation_moves_every_secret_to_the_new_key(database):
    app = app_with(database, NEW, OLD)
    store_secrets(app, OLD)
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 5 secret(s)" in result.output
    only_new = CredentialVault([NEW])
    with app.app_context():
        credential = db.session.scalars(select(ExchangeCredential)).one()
        assert only_new.decrypt(credential.api_secret_encrypted) == "binance-secret-123456"
        assert only_new.decrypt(db.session.scalars(select(LlmCredential)).one().api_key_encrypted) == "sk-deepseek-own"
        channel = db.session.scalars(select(NotificationChannel)).one()
        assert only_new.decrypt(channel.target_encrypted) == "https://hooks.example.com/steadyhand"
        assert only_new.decrypt(channel.secret_encrypted) == "whsec_signing-secret"
        with pytest.raises(VaultDecryptionError):
            CredentialVault([OLD]).decrypt(credential.api_key_encrypted)
        dump = str(db.session.execute(text("SELECT * FROM exchange_credentials")).all())
        assert "binance-secret-123456" not in dump
        db.engine.dispose()


def test_a_secret_no_key_can_read_stops_the_rotation_and_changes_nothing(database):
    app = app_with(database, NEW, OLD)
    store_secrets(app, STRANGER)
    with app.app_context():
        before = db.session.execute(text("SELECT api_key_encrypted FROM llm_credentials")).scalar_one()
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 1
    assert "nothing was changed" in result.output and "cannot be re-encrypted" in result.output
    assert STRANGER not in result.output and NEW not in result.output
    with app.app_context():
        assert db.session.execute(text("SELECT api_key_encrypted FROM llm_credentials")).scalar_one() == before
        db.engine.dispose()
