"""Running a recorded backtest in a background thread, with its own session; progress and results land on its
record (`GET` the record to follow it)."""

import logging
import threading

from flask import Flask

from app import SETTINGS_EXTENSION
from app.errors import ServiceError
from app.extensions import db, db_session
from app.services.backtests import run_recorded_backtest

log = logging.getLogger(__name__)


def start_in_background(app: Flask, backtest_id: int) -> threading.Thread:
    """Run a QUEUED backtest in a daemon thread; a failure is recorded on the backtest, never raised here."""

    def work() -> None:
        with app.app_context():
            try:
                run_recorded_backtest(db_session(), app.extensions[SETTINGS_EXTENSION], backtest_id)
            except ServiceError as error:
                log.info("backtest did not finish", extra={"backtest_id": backtest_id, "reason": error.message})
            finally:
                db.session.remove()

    thread = threading.Thread(target=work, name=f"backtest-{backtest_id}", daemon=True)
    thread.start()
    return thread
