"""`replay status | restart`: where the replay market is (it plays the bundled 2024 candles once, then holds at
their end), and starting it over from the beginning."""

import getpass

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import session, settings
from app.services import replay, system_clock
from app.services.replay import ReplayStatus


@group("replay")
def replay_group() -> None:
    """The replay market: the bundled 2024 Binance candles played once on an accelerated clock."""


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _echo_status(status: ReplayStatus) -> None:
    click.echo(status.description)
    click.echo(f"started {status.started_at:%Y-%m-%d %H:%M:%S} UTC (wall clock)", nl=False)
    if status.finished:
        click.echo(f", finished {status.ends_at:%Y-%m-%d %H:%M:%S} UTC: no new bar closes, so watches do not run")
        click.echo("play it again from the start with: flask --app wsgi replay restart")
    else:
        click.echo(f", finishes {status.ends_at:%Y-%m-%d %H:%M:%S} UTC and then holds at its last bar")
    if status.market != "replay":
        click.echo(f"scheduled watches read {status.market}, not the replay (STEADYHAND_MARKET)")


@replay_group.command("status")
@with_appcontext
def status_command() -> None:
    """Where the replay is, its speed, start and end, and whether it has finished."""
    _echo_status(replay.replay_status(session(), settings(), system_clock))


@replay_group.command("restart")
@click.option("--by", default=_operator, show_default="your login name", help="Who restarts it (audited).")
@with_appcontext
def restart_command(by: str) -> None:
    """Play the replay again from its start, in every process started from now on. Refused while a scheduler runs,
    or while paper accounts or watches have already been past the replay's start (their clocks only move forward)."""
    status = replay.restart_replay(session(), settings(), by, system_clock)
    session().commit()
    click.echo("replay restarted: it plays again from its start")
    _echo_status(status)
    click.echo("a web app started earlier picks it up on its next request; start the scheduler again now")
