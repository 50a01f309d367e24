"""`rotate-keys`: re-encrypt every stored secret under the primary (first) encryption key."""

import click
from flask.cli import with_appcontext

from app.commands.cli import command
from app.commands.common import session, settings
from app.services.credentials import rotate_keys


@command("rotate-keys")
@with_appcontext
def rotate_keys_command() -> None:
    """Re-encrypt exchange and LLM keys with the first key of STEADYHAND_ENCRYPTION_KEYS.

    Put the new key first and keep the old ones after it, run this, then drop the old keys. Either every secret
    is re-encrypted or none is.
    """
    rotated = rotate_keys(session(), settings())
    session().commit()
    click.echo(f"re-encrypted {rotated} secret(s) under the primary key")
