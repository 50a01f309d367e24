"""`kill-switch status | on | off`: stop new positions on every account (global, the operator's) or on one account
(its HALTED state); exits, stops and take profits still run. Audited."""

import getpass

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import acting_user, session
from app.services import kill_switch, system_clock


@group("kill-switch")
def kill_switch_group() -> None:
    """Stop new positions globally or on one account (exits, stops and take profits still run)."""


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


@kill_switch_group.command("status")
@with_appcontext
def status_command() -> None:
    """The global switch and every HALTED account with why it stopped."""
    state = kill_switch.global_state(session())
    if state is None:
        click.echo("global kill switch: off")
    elif state.engaged:
        click.echo(f"global kill switch: ENGAGED {kill_switch.describe(state)}")
        click.echo("  new positions are refused on every account; release with: flask --app wsgi kill-switch off")
    else:
        click.echo(f"global kill switch: off ({kill_switch.describe(state)})")
    halted = kill_switch.halted_accounts(session())
    if not halted:
        click.echo("halted accounts: none")
        return
    click.echo("halted accounts:")
    for item in halted:
        account = item.account
        click.echo(f"  #{account.id}  {account.name} ({item.owner_email}): {item.reason or 'no reason recorded'}")
        click.echo(f"    resume with: flask --app wsgi account resume {account.id} --user {item.owner_email}")


@kill_switch_group.command("on")
@click.option("--reason", required=True, help="Why (audited, shown in status and in every refusal).")
@click.option("--account", "account_id", type=int, help="Halt only this account (default: every account).")
@click.option("--user", "email", help="The account's owner (default: the only user); only with --account.")
@click.option("--by", default=_operator, show_default="your login name", help="Who engages the global switch.")
@with_appcontext
def on_command(reason: str, account_id: int | None, email: str | None, by: str) -> None:
    """Refuse new positions from the next order on (exits, stops and take profits still run)."""
    if account_id is None:
        if email:
            raise click.UsageError("--user only applies with --account")
        state = kill_switch.engage_global(session(), reason, by, system_clock())
        session().commit()
        click.echo(f"global kill switch ENGAGED {kill_switch.describe(state)}")
        click.echo("new positions are refused on every account; exits, stops and take profits still run")
        return
    account = kill_switch.engage_account(session(), acting_user(email).id, account_id, reason, system_clock())
    session().commit()
    click.echo(f"account #{account.id} ({account.name}) is HALTED: kill switch: {' '.join(reason.split())}")
    click.echo(f"resume with: flask --app wsgi account resume {account.id}")


@kill_switch_group.command("off")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--by", default=_operator, show_default="your login name", help="Who releases the global switch.")
@click.option("--account", "account_id", type=int, help="Not here: one account is resumed with `account resume ID`.")
@with_appcontext
def off_command(yes: bool, by: str, account_id: int | None) -> None:
    """Release the global switch. One account's switch is released with `account resume ID`."""
    if account_id is not None:
        raise click.ClickException(
            f"one account's kill switch is released with: flask --app wsgi account resume {account_id} "
            "(it shows why the account stopped first)"
        )
    state = kill_switch.global_state(session())
    if state is not None and state.engaged:
        click.echo(f"global kill switch: ENGAGED {kill_switch.describe(state)}")
        if not yes:
            click.confirm("Release it and let every account open positions again?", abort=True)
    released = kill_switch.release_global(session(), by, system_clock())
    session().commit()
    click.echo(f"global kill switch off ({kill_switch.describe(released)})")
    click.echo("one account's kill switch is released with: flask --app wsgi account resume ID")
