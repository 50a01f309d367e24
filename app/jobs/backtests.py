"""Running a queued backtest as a job: the scheduler's own pool (no broker) or a Celery worker (`run_backtest`) calls
`run_queued_backtest`. No web worker runs one: a request only records it QUEUED (see `services.backtests`).

Progress, a heartbeat and the outcome land on the backtest's record (`GET` the record to follow it); a worker that
dies mid-run leaves a stale heartbeat, and the next worker or scheduler start marks the run failed
(`mark_dead_backtests`).
"""

import logging

from flask import Flask

from app import SETTINGS_EXTENSION
from app.errors import ConflictError, NotFoundError, ServiceError
from app.extensions import db, db_session
from app.services import Clock, system_clock
from app.services.backtests import fail_dead_backtests, run_recorded_backtest

log = logging.getLogger(__name__)


def run_queued_backtest(app: Flask, backtest_id: int, worker: str, clock: Clock = system_clock) -> bool:
    """Claim and run a QUEUED backtest in its own app context and session. False when it was not queued (another
    worker has it, or this is a second delivery of the same job): nothing runs then. A failure is recorded on the
    backtest, never raised here."""
    with app.app_context():
        try:
            run_recorded_backtest(
                db_session(), app.extensions[SETTINGS_EXTENSION], backtest_id, clock=clock, worker=worker
            )
        except (ConflictError, NotFoundError) as error:  # not queued any more, or deleted meanwhile
            log.info("backtest not run", extra={"backtest_id": backtest_id, "reason": error.message})
            return False
        except ServiceError as error:
            log.info("backtest did not finish", extra={"backtest_id": backtest_id, "reason": error.message})
        except Exception:  # recorded on the backtest by run_recorded_backtest; the worker goes on
            log.exception("backtest failed", extra={"backtest_id": backtest_id})
        finally:
            db.session.remove()
    return True


def mark_dead_backtests(app: Flask, clock: Clock = system_clock) -> list[int]:
    """At a worker's or the scheduler's start: fail RUNNING backtests whose worker stopped beating."""
    with app.app_context():
        try:
            return fail_dead_backtests(db_session(), clock())
        finally:
            db.session.remove()
