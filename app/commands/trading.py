"""`reconcile`: bring recorded orders and holdings in line with the exchanges."""

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import Account
from app.reconcile import reconcile_account
from exchanges.base import ExchangeError


@click.command("reconcile")
@click.option("--account", "account_id", type=int, help="Only this account (default: every account).")
@with_appcontext
def reconcile_command(account_id: int | None) -> None:
    """Compare recorded open orders and positions with the exchange and adopt what the exchange says."""
    query = select(Account).order_by(Account.id)
    if account_id is not None:
        query = query.where(Account.id == account_id)
    accounts = db.session.scalars(query).all()
    if account_id is not None and not accounts:
        raise click.ClickException(f"no account #{account_id}")
    deferred = 0
    for account in accounts:
        try:
            report = reconcile_account(db.session, current_settings(), account)
        except ExchangeError as error:
            raise click.ClickException(f"account #{account.id} ({account.name}): {error}") from None
        if report.deferred:
            deferred += 1
            click.echo(f"account #{account.id} ({account.name}): exchange unreachable, will retry on the next run")
            continue
        summary = f"{len(report.differences)} difference(s)" if report.differences else "in line with the exchange"
        click.echo(f"account #{account.id} ({account.name}): {summary}")
        for difference in report.differences:
            click.echo(f"  {difference}")
    if deferred:
        raise SystemExit(1)
