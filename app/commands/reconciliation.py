"""`reconcile`: bring recorded orders and holdings in line with the exchanges."""

import click
from flask.cli import with_appcontext

from app.commands.cli import command
from app.commands.common import session, settings
from app.services.reconciliation import accounts_to_reconcile, reconcile_account


@command("reconcile")
@click.option("--account", "account_id", type=int, help="Only this account (default: every account).")
@with_appcontext
def reconcile_command(account_id: int | None) -> None:
    """Compare recorded open orders and positions with the exchange and adopt what the exchange says."""
    if reconcile_accounts(account_id):
        raise SystemExit(1)


def reconcile_accounts(account_id: int | None = None) -> int:
    """Reconcile every account (or one), printing what changed; returns how many were deferred (unreachable)."""
    deferred = 0
    for account in accounts_to_reconcile(session(), account_id):
        report = reconcile_account(session(), settings(), account)
        if report.deferred:
            deferred += 1
            click.echo(f"account #{account.id} ({account.name}): exchange unreachable, will retry on the next run")
            continue
        summary = f"{len(report.differences)} difference(s)" if report.differences else "in line with the exchange"
        click.echo(f"account #{account.id} ({account.name}): {summary}")
        for difference in report.differences:
            click.echo(f"  {difference}")
    return deferred
