"""The scheduler process: exactly one leads, runs every due watch once per closed candle, never inside the web app.

`flask --app wsgi scheduler` runs it (gunicorn runs several web workers; a scheduler in each would run every watch
several times). APScheduler 3.11 ticks every couple of seconds; each tick renews or contests the leadership lease
(see `app.services.leadership`), and the leader claims the due runs (the unique (watch, bar) key makes a claim
exactly-once) and executes them in a thread pool, so one slow provider or exchange never holds up the other watches.
Watches are read afresh on every tick: a new, edited or paused watch takes effect without a restart.

Backtests requested from any front end wait QUEUED; the leader picks them up on its tick and runs them one at a time
on a thread of its own. With STEADYHAND_BROKER_URL set the leader only claims: it enqueues `run_watch(run_id)` and
`run_backtest(backtest_id)` for `celery -A app.jobs.celery_app worker` processes on any number of machines (see
`app.jobs.celery_app`).
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
from app.errors import ServiceError
from app.extensions import db, db_session
from app.jobs.backtests import mark_dead_backtests, run_queued_backtest
from app.jobs.notifications import NotificationSender
from app.models import Account
from app.services import Clock, backtests, idempotency, reconciliation, run_history, system_clock, watch_runs
from app.services.credentials import signal_services
from app.services.leadership import Leadership
from app.services.replay import replay_market
from app.services.workers import worker_name

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
LEASE_NAME = "scheduler"


@dataclass
class TickReport:
    leading: bool
    leader: str | None  # who leads, when it is not us
    claimed: list[int] = field(default_factory=list)  # run ids started on this tick
    timed_out: list[int] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)  # RUNNING runs whose worker process is gone
    reconciling: list[int] = field(default_factory=list)  # accounts with unsettled orders handed to reconciliation
    backtests: list[int] = field(default_factory=list)  # backtest ids started (or enqueued) on this tick
    dead_backtests: list[int] = field(default_factory=list)  # RUNNING backtests whose worker stopped beating
    idempotency_purged: int = 0  # API idempotency records past their retention, deleted


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
        self.worker = worker_name()
        with app.app_context():
            engine = db.engine
            if market_clock is None and config.market == "replay":
                market = replay_market(db_session(), self.settings, clock)
                say(f"market: {market.describe()}")
                market_clock = market.clock.now
            db.session.remove()
        self.market_clock: Clock = market_clock or clock
        # Without a broker the runs execute here; with one, `enqueue` hands each claimed id to the Celery workers.
        self.broker = config.broker_url
        self._enqueue_run: Callable[[int], None] | None = None
        self._enqueue_backtest: Callable[[int], None] | None = None
        if self.broker is not None:
            from app.jobs import celery_app, tasks  # only with a broker: Celery is not loaded otherwise

            celery_app.bind(app)
            self._enqueue_run, self._enqueue_backtest = tasks.enqueue_watch_run, tasks.enqueue_backtest
            say(f"scheduler {self.worker}: runs and backtests go to Celery workers via {_masked(self.broker)}")
        self._enqueued_runs: set[int] = set()
        self._enqueued_backtests: set[int] = set()
        self.backtest_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest")
        self._backtest: Future[object] | None = None
        dead = mark_dead_backtests(app, clock)
        if dead:
            say(f"backtest(s) {', '.join(f'#{i}' for i in dead)} failed: the worker running them stopped")
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
        self._settle_pending = True  # on first leading: what a previous leader left unsettled
        self._reconciling: Future[object] | None = None

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
        report.interrupted = watch_runs.fail_interrupted(session, now)
        if report.interrupted:
            self.say(f"run(s) {', '.join(f'#{i}' for i in report.interrupted)} failed: their worker stopped mid-run")
        if report.timed_out or report.interrupted or self._settle_pending:
            # A run that died may have sent an order: settle it with the exchange now, not at the account's next
            # order (a position nobody records has no stop watched over it).
            self._settle_pending = False
            report.reconciling = self._reconcile(reconciliation.accounts_with_unsettled_orders(session))
        for due in watch_runs.due_runs(session, self.market_clock(), timedelta(seconds=config.settle_seconds)):
            run = watch_runs.claim(session, due, now, self.worker)
            if run is not None:
                report.claimed.append(run.id)
                self._submit(run.id)
        # Runs claimed but never started (the process that claimed them stopped first) start now, once.
        queued = watch_runs.queued_run_ids(session)
        with self._lock:
            self._enqueued_runs.intersection_update(queued)
        for run_id in queued:
            self._submit(run_id)
        report.dead_backtests = backtests.fail_dead_backtests(session, now)
        report.backtests = self._pick_up_backtests(backtests.queued_backtest_ids(session))
        report.idempotency_purged = idempotency.purge(session, now)
        session.commit()
        if self._sending is None or self._sending.done():
            self._sending = self.notify_pool.submit(self._send_notifications)
        return report

    def _reconcile(self, accounts: list[Account]) -> list[int]:
        """Reconcile `accounts` on a thread of the run pool (exchanges may be slow); one pass at a time."""
        if not accounts:
            return []
        if self._reconciling is not None and not self._reconciling.done():
            self._settle_pending = True  # the next tick tries again
            return []
        account_ids = [account.id for account in accounts]
        self._reconciling = self.pool.submit(self._reconcile_accounts, account_ids)
        return account_ids

    def _reconcile_accounts(self, account_ids: list[int]) -> None:
        with self.app.app_context():
            try:
                for account_id in account_ids:
                    self.say(self._reconcile_one(account_id))
            finally:
                db.session.remove()

    def _reconcile_one(self, account_id: int) -> str:
        session = db_session()
        try:
            [account] = reconciliation.accounts_to_reconcile(session, account_id)
            report = reconciliation.reconcile_account(session, self.settings, account)
        except ServiceError as error:
            session.rollback()
            return f"reconcile account #{account_id}: {error.code}: {error.message}"
        except Exception:  # the scheduler goes on; the next start (or `reconcile`) tries again
            session.rollback()
            log.exception("reconcile failed", extra={"account_id": account_id})
            return f"reconcile account #{account_id}: failed (see the log)"
        if report.deferred:
            return f"reconcile account #{account_id}: deferred, the exchange is unreachable"
        return f"reconcile account #{account_id}: " + ("; ".join(report.differences) or "nothing to change")

    def _send_notifications(self) -> None:
        try:
            self.sender()
        except Exception:  # the outbox keeps what was not sent; the next tick tries again
            log.exception("sending notifications failed")

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until the runs, reconciliation and notification passes started so far have finished (`--once`, and
        tests)."""
        with self._lock:
            futures: list[Future[object]] = [*self.running.values()]
        for extra in (self._sending, self._backtest, self._reconciling):
            if extra is not None:
                futures.append(extra)
        wait(futures, timeout)

    def _submit(self, run_id: int) -> None:
        if self._enqueue_run is not None:
            with self._lock:
                if run_id in self._enqueued_runs:
                    return
                self._enqueued_runs.add(run_id)
            try:
                self._enqueue_run(run_id)
            except Exception:  # the broker is down: the run stays QUEUED and the next tick enqueues it again
                log.exception("watch run could not be enqueued", extra={"run_id": run_id})
                with self._lock:
                    self._enqueued_runs.discard(run_id)
            return
        with self._lock:
            if run_id in self.running:
                return
            self.running[run_id] = self.pool.submit(self._execute, run_id)

    def _pick_up_backtests(self, queued: list[int]) -> list[int]:
        """Without a broker, run the oldest QUEUED backtest when none runs here; with one, enqueue each once."""
        if self._enqueue_backtest is None:
            if not queued or (self._backtest is not None and not self._backtest.done()):
                return []
            self._backtest = self.backtest_pool.submit(
                run_queued_backtest, self.app, queued[0], self.worker, self.clock
            )
            return queued[:1]
        self._enqueued_backtests.intersection_update(queued)
        started = []
        for backtest_id in queued:
            if backtest_id in self._enqueued_backtests:
                continue
            try:
                self._enqueue_backtest(backtest_id)
            except Exception:  # the broker is down: the next tick tries again
                log.exception("backtest could not be enqueued", extra={"backtest_id": backtest_id})
                break
            self._enqueued_backtests.add(backtest_id)
            started.append(backtest_id)
        return started

    def _execute(self, run_id: int) -> None:
        try:
            line = execute_watch_run(self.app, run_id, self.market_clock, self.worker)
            if line is not None:
                self.say(line)
        finally:
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
            if self._backtest is not None and not self._backtest.done():
                self.say("finishing the backtest in progress before stopping")
            self.backtest_pool.shutdown(wait=True)
            with self.app.app_context():
                self.leadership.release()


def market_clock_of(app: Flask, clock: Clock = system_clock) -> Clock:
    """The market's clock for watch runs: the installation's replay clock on the replay market, else `clock`."""
    settings: Settings = app.extensions[SETTINGS_EXTENSION]
    if settings.scheduler.market != "replay":
        return clock
    with app.app_context():
        try:
            return replay_market(db_session(), settings, clock).clock.now
        finally:
            db.session.remove()


def execute_watch_run(app: Flask, run_id: int, market_clock: Clock, worker: str) -> str | None:
    """Execute a claimed run in its own app context and session (the scheduler's pool and the Celery task both call
    this); its one-line outcome, or None when it was not QUEUED any more (already run: nothing is done)."""
    settings: Settings = app.extensions[SETTINGS_EXTENSION]
    with app.app_context():
        try:
            run = watch_runs.execute_run(
                db_session(),
                settings,
                run_id,
                lambda session, user_id: signal_services(session, settings, user_id),
                settings.scheduler.market,
                market_clock,
                worker,
            )
            return run_history.run_summary(db_session(), run.id)
        except watch_runs.RunNotQueuedError as error:
            log.info(f"watch run #{run_id} skipped: {error} (already started or run)", extra={"run_id": run_id})
            return None
        except Exception:  # a run that cannot even start is logged; the pool must keep serving the others
            log.exception("watch run could not start", extra={"run_id": run_id})
            return None
        finally:
            db.session.remove()


def _masked(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
