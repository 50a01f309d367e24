"""`bootstrap`: everything `make run` does before serving, in one process (each `flask` start costs seconds)."""

import click
from flask.cli import with_appcontext
from flask_migrate import upgrade

from app.commands.cli import command
from app.commands.common import session, settings
from app.commands.data import echo_seed
from app.commands.reconciliation import reconcile_accounts
from app.services.demo import seed_demo


@command("bootstrap")
@with_appcontext
def bootstrap_command() -> None:
    """Migrate the database, seed the demo (local instances only) and reconcile every account."""
    upgrade()
    if not settings().is_production:
        echo_seed(seed_demo(session(), settings()))
    if reconcile_accounts():
        click.echo("reconcile deferred: an exchange was unreachable; it runs again on the next start")
