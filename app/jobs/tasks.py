"""The Celery tasks: a watch run and a backtest, by id. Each opens the Flask app's context and its own session; a
run or backtest that is not QUEUED any more (already run: the task was delivered twice) is skipped."""

import logging

from app.jobs.backtests import run_queued_backtest
from app.jobs.celery_app import celery, flask_app, queue
from app.jobs.scheduler import execute_watch_run, market_clock_of
from app.services.workers import worker_name

log = logging.getLogger(__name__)


@celery.task(name="steadyhand.run_watch")
def run_watch(run_id: int) -> str | None:
    """Execute a claimed watch run; None when it was not QUEUED (nothing done)."""
    app = flask_app()
    line = execute_watch_run(app, run_id, market_clock_of(app), worker_name())
    if line is not None:
        log.info(line)
    return line


@celery.task(name="steadyhand.run_backtest")
def run_backtest(backtest_id: int) -> bool:
    """Claim and run a QUEUED backtest; False when it was not queued (nothing done)."""
    return run_queued_backtest(flask_app(), backtest_id, worker_name())


def enqueue_watch_run(run_id: int) -> None:
    run_watch.apply_async((run_id,), queue=queue())


def enqueue_backtest(backtest_id: int) -> None:
    run_backtest.apply_async((backtest_id,), queue=queue())
