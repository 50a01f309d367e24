"""The scheduler process: exactly one leads, runs every due watch once per closed candle, never inside the web app.

`flask --app wsgi scheduler` runs it (gunicorn runs several web workers; a scheduler in each would run every watch
several times). APScheduler 3.11 ticks every couple of seconds; each tick renews or contests the leadership lease
(see `app.services.leadership`), and the leader claims the due runs (the unique (watch, bar) key makes a claim
exactly-once) and executes them in a thread pool, so one slow provider or exchange never holds up the other watches.
Watches are read afresh on every tick: a new, edited or paused watch takes effect without a restart.
"""

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from app import SETTINGS_EXTENSION
from app.config import Settings
from app.extensions import db, db_session
from app.jobs.notifications import NotificationSender
from app.models import WatchRun
from app.services import Clock, system_clock, watch_runs
from app.services.credentials import signal_services
from app.services.leadership import Leadership
from app.services.replay import replay_market

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
LEASE_NAME = "scheduler"


@dataclass
class TickReport:
    leading: bool
    leader: str | None  # who leads, when it is not us
    claimed: list[int] = field(default_factory=list)  # run ids started on this tick
    timed_out: list[int] = field(default_factory=list)


class WatchScheduler:
    """The scheduler of one process. `market_clock` gives the market's time: by default the replay's clock when
    watches read the replay market (STEADYHAND_MARKET=replay), else the wall clock."""

    def __init__(
        self,
        app: Flask,
        market_clock: Clock | None = None,
        clock: Clock = system_clock,
        say: Callable[[str], None] = print,
    ) -> None:
        self.app = app
        self.settings: Settings = app.extensions[SETTINGS_EXTENSION]
        config = self.settings.scheduler
        self.clock, self.say = clock, say
        self.worker = watch_runs.worker_name()
        with app.app_context():
            engine = db.engine
            if market_clock is None and config.market == "replay":
                market = replay_market(db_session(), self.settings, clock)
                say(f"market: {market.describe()}")
                market_clock = market.clock.now
            db.session.remove()
        self.market_clock: Clock = market_clock or clock
        self.leadership = Leadership(
            # The instance tag tells two schedulers of one process apart (tests run two side by side).
            engine,
            LEASE_NAME,
            f"scheduler@{self.worker}#{secrets.token_hex(3)}",
            timedelta(seconds=config.lease_seconds),
        )
        self.pool = ThreadPoolExecutor(max_workers=config.pool_size, thread_name_prefix="watch-run")
        # Notifications go out on their own thread: a slow or failing receiver never takes a run's place.
        self.sender = NotificationSender(app, clock)
        self.notify_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")
        self._sending: Future[object] | None = None
        self.running: dict[int, Future[object]] = {}
        self._lock = threading.Lock()
        self._was_leading: bool | None = None

    def tick(self) -> TickReport:
        """Contest or renew the leadership; as leader, fail runs past their timeout and start every due run."""
        with self.app.app_context():
            try:
                return self._tick()
            finally:
                db.session.remove()

    def _tick(self) -> TickReport:
        now = self.clock()
        leading = self.leadership.try_lead(now)
        current = None if leading else self.leadership.current()
        leader = current.holder if current else None
        self._announce(leading, leader, current.expires_at if current else None)
        report = TickReport(leading, leader)
        if not leading:
            return report
        session = db_session()
        config = self.settings.scheduler
        report.timed_out = watch_runs.fail_stalled(session, now, timedelta(seconds=config.run_timeout_seconds))
        for due in watch_runs.due_runs(session, self.market_clock(), timedelta(seconds=config.settle_seconds)):
            run = watch_runs.claim(session, due, now, self.worker)
            if run is not None:
                report.claimed.append(run.id)
                self._submit(run.id)
        # Runs claimed but never started (the process that claimed them stopped first) start now, once.
        for run_id in watch_runs.queued_run_ids(session):
            self._submit(run_id)
        if self._sending is None or self._sending.done():
            self._sending = self.notify_pool.submit(self._send_notifications)
        return report

    def _send_notifications(self) -> None:
        try:
            self.sender()
        except Exception:  # the outbox keeps what was not sent; the next tick tries again
            log.exception("sending notifications failed")

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until the runs and the notification pass started so far have finished (`--once`, and tests)."""
        with self._lock:
            futures: list[Future[object]] = [*self.running.values()]
        if self._sending is not None:
            futures.append(self._sending)
        wait(futures, timeout)

    def _submit(self, run_id: int) -> None:
        with self._lock:
            if run_id in self.running:
                return
            self.running[run_id] = self.pool.submit(self._execute, run_id)

    def _execute(self, run_id: int) -> None:
        with self.app.app_context():
            try:
                run = watch_runs.execute_run(
                    db_session(),
                    self.settings,
                    run_id,
                    lambda session, user_id: signal_services(session, self.settings, user_id),
                    self.settings.scheduler.market,
                    self.market_clock,
                    self.worker,
                )
                self.say(_run_line(run))
            except Exception:  # a run that cannot even start is logged; the pool must keep serving the others
                log.exception("watch run could not start", extra={"run_id": run_id})
            finally:
                db.session.remove()
                with self._lock:
                    self.running.pop(run_id, None)

    def _announce(self, leading: bool, leader: str | None, until: datetime | None) -> None:
        if leading == self._was_leading:
            return
        self._was_leading = leading
        if leading:
            self.say(f"scheduler {self.worker}: leading; watches run on every candle close")
        else:
            until_text = f" until {until:%H:%M:%S} UTC unless renewed" if until else ""
            self.say(f"scheduler {self.worker}: standing by, {leader} leads{until_text}")

    def serve(self, stop: threading.Event) -> None:
        """Tick every couple of seconds until `stop` is set (Ctrl-C), then hand the leadership over."""
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(self.tick, "interval", seconds=TICK_SECONDS, max_instances=1, coalesce=True)
        self.tick()
        scheduler.start()
        try:
            stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            self.pool.shutdown(wait=True, cancel_futures=False)
            self.notify_pool.shutdown(wait=True)
            with self.app.app_context():
                self.leadership.release()


def _run_line(run: WatchRun) -> str:
    outcome = (
        run.status.value if run.error_code is None else f"{run.status.value} at {run.failed_step}: {run.error_code}"
    )
    return f"run #{run.id} watch #{run.watch_id} bar {run.bar_time:%Y-%m-%d %H:%M} UTC: {outcome}"
