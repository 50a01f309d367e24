"""`scheduler`: the one process that runs watches on every candle close (never started inside the web app)."""

import logging
import signal
import threading
from types import FrameType

import click
from flask import current_app
from flask.cli import with_appcontext

from app.commands.cli import command
from app.jobs.scheduler import WatchScheduler


@command("scheduler")
@click.option(
    "--once", is_flag=True, help="One tick (contest the leadership, start what is due, wait for it), then exit."
)
@with_appcontext
def scheduler_command(once: bool) -> None:
    """Run due watches on every closed candle, exactly once each; a second scheduler stands by and takes over within
    a lease period if this one stops."""
    # APScheduler logs every tick at INFO: two lines every two seconds would bury the runs' own lines.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the real app, for the worker threads
    scheduler = WatchScheduler(app, say=lambda line: click.echo(line))
    if once:
        report = scheduler.tick()
        scheduler.wait_idle()
        scheduler.pool.shutdown(wait=True)
        scheduler.notify_pool.shutdown(wait=True)
        if report.leading and not report.claimed:
            click.echo("nothing due")
        return
    stop = threading.Event()

    def stop_on(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, stop_on)
    signal.signal(signal.SIGTERM, stop_on)
    scheduler.serve(stop)
    click.echo("scheduler stopped")
