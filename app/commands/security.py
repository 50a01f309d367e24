"""`rotate-keys`: re-encrypt every stored secret under the primary (first) encryption key."""

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import ExchangeCredential, LlmCredential
from exchanges.vault import CredentialVault, VaultDecryptionError

ENCRYPTED_FIELDS = {
    ExchangeCredential: ("api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted"),
    LlmCredential: ("api_key_encrypted",),
}


@click.command("rotate-keys")
@with_appcontext
def rotate_keys_command() -> None:
    """Re-encrypt exchange and LLM keys with the first key of STEADYHAND_ENCRYPTION_KEYS.

    Put the new key first and keep the old ones after it, run this, then drop the old keys. Either every secret
    is re-encrypted or none is.
    """
    vault = CredentialVault(current_settings().encryption_keys)
    rotated = 0
    try:
        for model, fields in ENCRYPTED_FIELDS.items():
            for record in db.session.scalars(select(model)):
                for name in fields:
                    token = getattr(record, name)
                    if token:
                        setattr(record, name, vault.rotate(token))
                        rotated += 1
        db.session.commit()
    except VaultDecryptionError as error:
        db.session.rollback()
        raise click.ClickException(f"nothing was changed: {error}") from None
    click.echo(f"re-encrypted {rotated} secret(s) under the primary key")
