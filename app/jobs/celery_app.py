"""Celery, for running watch runs and backtests on any number of machines (STEADYHAND_BROKER_URL set).

    celery -A app.jobs.celery_app worker --concurrency 4        # on each worker machine, beside the same DATABASE_URL

The scheduler stays the one dispatcher: it claims a run (the run's row is the exactly-once key, never the broker)
and enqueues `run_watch(run_id)`; it enqueues `run_backtest(backtest_id)` for each QUEUED backtest. A worker
executes a task in the Flask app's context; a run or backtest that is no longer QUEUED is refused, so a task
delivered twice (a killed worker's task is redelivered: acks_late + reject_on_worker_lost) runs once.

Tasks carry ids only (JSON); no result backend: outcomes live on the records.
"""

import logging
import threading
from typing import Any

from celery import Celery, signals  # type: ignore[import-untyped]  # celery ships no type hints
from flask import Flask

from app import SETTINGS_EXTENSION
from app.config import ConfigError, Settings, environment_with_dotenv, load_settings

log = logging.getLogger(__name__)

QUEUE = "steadyhand"

celery = Celery("steadyhand", include=["app.jobs.tasks"], set_as_current=False)
celery.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_store_errors_even_if_ignored=False,
    # A task is acknowledged when it finished; a worker killed mid-task gets it redelivered to another worker.
    # The run's status makes the second delivery a no-op, so "at least once" from the broker is exactly once here.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # a long backtest never holds queued runs hostage in one worker's prefetch
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,  # the app's logging setup (JSON or text) stays in charge
    worker_redirect_stdouts=False,
    # Redis redelivers an unacknowledged task after this many seconds: above the longest backtest.
    broker_transport_options={"visibility_timeout": 6 * 3600},
)

_app: Flask | None = None
_queue = QUEUE
_lock = threading.RLock()


def _broker_from_environment() -> dict[str, Any]:
    """Read lazily, when a worker (not the scheduler, which binds its own app) first reads the configuration."""
    broker = load_settings(environment_with_dotenv()).scheduler.broker_url
    return {"broker_url": broker} if broker else {}


celery.add_defaults(_broker_from_environment)


def bind(app: Flask, queue: str | None = None) -> Celery:
    """Send and run this process's tasks with `app` (its STEADYHAND_BROKER_URL) on `queue` (default: as before,
    "steadyhand" unless bound otherwise; a worker consumes it unless started with `-Q`)."""
    global _app, _queue
    settings: Settings = app.extensions[SETTINGS_EXTENSION]
    if settings.scheduler.broker_url is None:
        raise ConfigError("STEADYHAND_BROKER_URL is not set: Celery has no broker to use")
    with _lock:
        _app, _queue = app, queue or _queue
        celery.conf.broker_url = settings.scheduler.broker_url
    return celery


def queue() -> str:
    return _queue


def flask_app() -> Flask:
    """The Flask app tasks run in: the bound one, or (in a `celery worker`) one created from the environment."""
    with _lock:
        if _app is None:
            from app import create_app  # a worker builds the app the same way the web and the scheduler do

            created = create_app()
            if created.extensions[SETTINGS_EXTENSION].scheduler.broker_url is None:
                raise ConfigError("STEADYHAND_BROKER_URL is not set: a Celery worker needs the broker")
            bind(created)
        assert _app is not None
        return _app


@signals.setup_logging.connect
def _use_the_apps_logging(**_: object) -> None:
    """Celery configures no logging of its own: the app's (JSON or text, secrets masked) applies, set up here as the
    worker builds the Flask app, so a configuration error stops the worker at once."""
    flask_app()


@signals.worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    """A worker start is where a dead worker's leftovers are found: RUNNING backtests without a heartbeat fail."""
    from app.jobs.backtests import mark_dead_backtests

    dead = mark_dead_backtests(flask_app())
    if dead:
        log.warning("backtests whose worker stopped marked failed", extra={"backtest_ids": dead})
