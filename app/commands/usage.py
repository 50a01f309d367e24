"""`usage`: AI spend today and this month against the budgets."""

import click
from flask.cli import with_appcontext

from app.commands.cli import command
from app.commands.common import acting_user, session
from app.services import system_clock
from app.services.usage import budget_status


@command("usage")
@click.option("--user", "email", help="Whose spend (default: the only user).")
@with_appcontext
def usage_command(email: str | None) -> None:
    """Show AI spend (settled calls plus open reservations) against the daily and monthly budgets, in USD."""
    for period in budget_status(session(), acting_user(email), system_clock()):
        click.echo(
            f"{period.name:<11} ${period.spent_usd:.6f} of ${period.budget_usd:.2f}  (${period.remaining_usd:.6f} left)"
        )
