"""Scheduled analysis: one run per watch and closed bar, recorded with its steps, timings and outcome.

A run is claimed by inserting its row: the unique (watch, bar) key lets exactly one claimant win, so a double
trigger, a restarted scheduler or a second worker can never analyse (or pay for, or trade) the same bar twice.
After downtime a watch catches up with the latest closed bar only: missed bars are not paid for (position upkeep,
which needs every bar, walks them inside the run; see `app.services.upkeep`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ai.signals import SignalServices
from app.config import Settings
from app.errors import ServiceError
from app.models import Account, AnalysisStatus, RunStatus, Watch, WatchRun
from app.services import Clock, markets, notifications, system_clock
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.exchanges import account_market
from app.services.lookup import owned
from app.services.replay import replay_market
from app.services.steps import StepLog
from app.services.workers import is_gone, worker_name
from exchanges.timeframes import last_closed_bar_open, timeframe_duration

log = logging.getLogger(__name__)

ServicesFor = Callable[[Session, int], SignalServices]  # (session, user id) -> the AI layer's ports for that user


@dataclass(frozen=True)
class DueRun:
    watch_id: int
    bar_time: datetime  # open time of the closed bar to analyse
    trigger: str  # "schedule" for the next bar, "catch_up" when bars were missed


class RunNotQueuedError(ValueError):
    """The run is missing or not QUEUED: another worker started it, or it already ran (a task delivered twice)."""


def due_runs(session: Session, market_now: datetime, settle: timedelta) -> list[DueRun]:
    """Every enabled watch whose latest bar closed at least `settle` ago (by the market's clock) has no run yet.

    `settle` gives the exchange time to publish the closed candle. Only the latest closed bar is due: a watch
    that missed bars (downtime) catches up with that one alone. A watch whose previous run is still queued or
    running has nothing due: runs slower than a bar (a slow provider) never pile up, and once it finishes the watch
    catches up with the latest bar.
    """
    in_flight = select(WatchRun.watch_id).where(WatchRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
    due = []
    for watch in session.scalars(select(Watch).where(Watch.enabled, Watch.id.not_in(in_flight)).order_by(Watch.id)):
        bar = last_closed_bar_open(watch.timeframe, market_now - settle)
        if watch.last_bar_at is not None and bar <= watch.last_bar_at:
            continue
        missed = watch.last_bar_at is not None and bar - watch.last_bar_at > timeframe_duration(watch.timeframe)
        due.append(DueRun(watch.id, bar, "catch_up" if missed else "schedule"))
    return due


def claim(session: Session, due: DueRun, now: datetime, worker: str | None = None) -> WatchRun | None:
    """Record the run of `due` as QUEUED, or None when that (watch, bar) already has one. Commits."""
    run = WatchRun(
        watch_id=due.watch_id, bar_time=due.bar_time, trigger=due.trigger, worker=worker, created_at=now, steps=[]
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return None
    watch = session.get(Watch, due.watch_id)
    if watch is not None and (watch.last_bar_at is None or due.bar_time > watch.last_bar_at):
        watch.last_bar_at = due.bar_time
        watch.last_run_at = now
    session.commit()
    return run


def execute_run(
    session: Session,
    settings: Settings,
    run_id: int,
    services_for: ServicesFor,
    market: str,
    clock: Clock = system_clock,
    worker: str | None = None,
    wall: Clock = system_clock,
) -> WatchRun:
    """Run a claimed run: candles of its bar, context, signal within the watch's budgets, risk decision, and an
    order when the watch auto-executes. Never raises for what a run can meet: a refusal or a failure is recorded
    on the run (status FAILED, the failing step, a code and a readable reason) and the next bar runs normally.

    `market`: where candles come from ("store", "replay" or "ccxt:EXCHANGE"), except for a live account's watch,
    which always reads its own exchange (see `market_for`); `clock` is that market's time (the
    replay's clock on the replay), what the analysis and the account's trading see; `wall` stamps the run's start
    and finish, so run durations and timeouts are real seconds. Commits the run's state at start and end; the
    analysis commits its own steps (see `run_analysis`).
    """
    # QUEUED -> RUNNING in one conditional UPDATE: of two deliveries of the same run (a broker redelivers a killed
    # worker's task), however close together, exactly one starts it.
    started = session.execute(
        update(WatchRun)
        .where(WatchRun.id == run_id, WatchRun.status == RunStatus.QUEUED)
        .values(status=RunStatus.RUNNING, started_at=wall(), worker=func.coalesce(worker, WatchRun.worker))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if getattr(started, "rowcount", 0) != 1:
        raise RunNotQueuedError(f"watch run #{run_id} is not queued")
    run = session.get(WatchRun, run_id)
    assert run is not None  # just started above
    watch = session.get(Watch, run.watch_id)
    steps = StepLog()
    try:
        if watch is None:
            raise ServiceError(f"watch #{run.watch_id} was deleted before its run started")
        account = session.get(Account, watch.account_id) if watch.account_id is not None else None
        request = AnalysisRequest(
            user_id=watch.user_id,
            symbol=watch.symbol,
            timeframe=watch.timeframe,
            signals=watch.signal_source,
            exchange_id=watch.exchange_id,
            rule_params={name: str(value) for name, value in (watch.signal_params or {}).items()},
            account_id=watch.account_id,
            watch_id=watch.id,
            # A live account's orders go to its exchange: its candles must come from there too, never the replay.
            market=market_for(watch, account, market),
            until=run.bar_time,
            execute=watch.auto_execute and watch.account_id is not None,
            advise_if_behind=True,
            api_key_id=watch.api_key_id,
        )
        result = run_analysis(session, settings, request, services_for(session, watch.user_id), clock, steps)
    except ServiceError as error:
        session.rollback()
        return _finish(session, run_id, steps, wall(), error.code, error.message)
    except Exception as error:  # a run records any failure: the scheduler must go on with the next one
        session.rollback()
        log.exception("watch run failed", extra={"run_id": run_id})
        return _finish(session, run_id, steps, wall(), "INTERNAL_ERROR", f"{type(error).__name__}: {error}")
    run = session.get(WatchRun, run_id)
    assert run is not None  # claimed above; runs are deleted only with their watch, and then this row is gone too
    run.analysis_id = result.analysis.id
    if result.trade is not None and result.trade.order is not None:
        run.order_id = result.trade.order.id
    outcome = result.outcome
    if outcome.status is not AnalysisStatus.OK:
        # The analysis is recorded with its status; the run says the signal step is where it stopped.
        code = str(outcome.reasons[0].code) if outcome.reasons else outcome.status.value.upper()
        reason = "; ".join(r.message for r in outcome.reasons) or outcome.status.value
        return _finish(session, run_id, steps, wall(), code, reason, "signal")
    return _finish(session, run_id, steps, wall(), None, None)


def _finish(
    session: Session,
    run_id: int,
    steps: StepLog,
    at: datetime,
    code: str | None,
    message: str | None,
    failed_step: str | None = None,
) -> WatchRun:
    run = session.get(WatchRun, run_id)
    assert run is not None  # see execute_run
    if run.status is not RunStatus.RUNNING:
        return run  # the scheduler gave up on it (timeout) and said why; a late finish does not overwrite that
    run.steps = list(steps.steps)
    run.finished_at = at
    if code is None:
        run.status = RunStatus.SUCCEEDED
    else:
        run.status = RunStatus.FAILED
        run.failed_step = failed_step or steps.failed_step or "prepare"
        run.error_code, run.error_message = code[:48], message
        watch = session.get(Watch, run.watch_id)
        if watch is not None:
            _notify_failed(session, watch, run, message or code, at)
    session.commit()
    return run


def _notify_failed(session: Session, watch: Watch, run: WatchRun, message: str, at: datetime) -> None:
    """Send `run.failed`, once per streak: a run failing like the watch's previous finished run (same code) was
    already told, so a watch failing every bar for one reason (a replay without enough history yet, a provider
    down for hours) does not flood its owner's channels. The next different failure, or the first after a success,
    is sent."""
    previous = session.scalars(
        select(WatchRun)
        .where(
            WatchRun.watch_id == watch.id,
            WatchRun.id != run.id,
            WatchRun.bar_time < run.bar_time,
            WatchRun.status.in_((RunStatus.SUCCEEDED, RunStatus.FAILED)),
        )
        .order_by(WatchRun.bar_time.desc())
        .limit(1)
    ).first()
    if previous is not None and previous.status is RunStatus.FAILED and previous.error_code == run.error_code:
        return
    notifications.notify(
        session,
        watch.user_id,
        "run.failed",
        {
            "watch_id": watch.id,
            "run_id": run.id,
            "symbol": watch.symbol,
            "timeframe": watch.timeframe,
            "bar_time": run.bar_time,
            "failed_step": run.failed_step,
            "error_code": run.error_code,
            "message": f"{watch.symbol} {watch.timeframe} bar {run.bar_time:%Y-%m-%d %H:%M} UTC failed at "
            f"{run.failed_step}: {message}",
        },
        now=at,
    )


def fail_stalled(session: Session, now: datetime, timeout: timedelta) -> list[int]:
    """Mark RUNNING runs older than `timeout` (a hung provider, or a worker that died mid-run) failed, and return
    their ids. An order such a run sent is settled with the exchange before the account's next order (and by
    `reconcile`), never sent again. Commits."""
    stalled = list(
        session.scalars(
            select(WatchRun).where(WatchRun.status == RunStatus.RUNNING, WatchRun.started_at < now - timeout)
        )
    )
    for run in stalled:
        _give_up(
            session,
            run,
            now,
            "RUN_TIMEOUT",
            f"still running after {timeout.total_seconds():.0f} s (worker {run.worker}): stopped waiting; "
            "any order it sent is settled before the account's next order",
        )
    session.commit()
    return [run.id for run in stalled]


def fail_interrupted(session: Session, now: datetime, gone: Callable[[str], bool] = is_gone) -> list[int]:
    """Mark RUNNING runs whose worker process is known to be gone (a scheduler or Celery worker of this host killed
    or crashed mid-run: see `app.services.workers.is_gone`) failed at once, rather than after the run timeout, and
    return their ids. The run is not repeated: its bar may have been paid for, and an order it sent is settled with the
    exchange before the account's next order. Commits."""
    running = session.scalars(select(WatchRun).where(WatchRun.status == RunStatus.RUNNING))
    interrupted = [run for run in running if run.worker is not None and gone(run.worker)]
    for run in interrupted:
        _give_up(
            session,
            run,
            now,
            "INTERRUPTED",
            f"its worker {run.worker} stopped during the run (killed or crashed); any order it sent is settled "
            "with the exchange before the account's next order",
        )
    session.commit()
    return [run.id for run in interrupted]


def _give_up(session: Session, run: WatchRun, now: datetime, code: str, message: str) -> None:
    run.status, run.finished_at = RunStatus.FAILED, now
    run.failed_step = run.failed_step or "run"
    run.error_code, run.error_message = code, message
    watch = session.get(Watch, run.watch_id)
    if watch is not None:
        _notify_failed(session, watch, run, message, now)


def queued_run_ids(session: Session) -> list[int]:
    """Runs claimed and not started yet, oldest first."""
    return list(session.scalars(select(WatchRun.id).where(WatchRun.status == RunStatus.QUEUED).order_by(WatchRun.id)))


def market_for(watch: Watch, account: Account | None, default_market: str) -> str:
    """Where a watch's candles come from: its account's market (`exchanges.account_market`), else the default."""
    return account_market(account, default_market) if account is not None else default_market


def run_now(
    session: Session,
    settings: Settings,
    user_id: int,
    watch_id: int,
    services_for: ServicesFor,
    market: str,
    market_clock: Clock,
    clock: Clock = system_clock,
) -> WatchRun:
    """ "Run now" for a person: the watch's latest closed bar by `market_clock`, once. When that bar has a run
    already, it is returned as it is (never a second paid call). Raises `NotFoundError` for a watch that is not the
    user's."""
    watch = owned(session, Watch, watch_id, user_id)
    bar = last_closed_bar_open(watch.timeframe, market_clock())
    run = claim(session, DueRun(watch.id, bar, "manual"), clock(), worker_name())
    if run is None:
        existing = session.scalar(select(WatchRun).where(WatchRun.watch_id == watch.id, WatchRun.bar_time == bar))
        assert existing is not None  # the claim lost to exactly this row
        return existing
    return execute_run(session, settings, run.id, services_for, market, market_clock, wall=clock)


def run_watch_now(
    session: Session, settings: Settings, user_id: int, watch_id: int, wall: Clock = system_clock
) -> WatchRun:
    """`run_now` on the market the scheduler would use for this watch (see `market_for`), on that market's clock.

    On the candle store "now" is at most the close of the watch's latest stored bar: run now analyses the newest bar
    there is (as an analysis without `until` does), not a bar no importer has stored yet, which could only fail."""
    watch = owned(session, Watch, watch_id, user_id)
    account = session.get(Account, watch.account_id) if watch.account_id is not None else None
    market = market_for(watch, account, settings.scheduler.market)
    market_clock = wall
    if market == "replay":
        market_clock = replay_market(session, settings, wall).clock.now
    elif market == "store":
        market_clock = _store_clock(session, watch, wall)
    return run_now(
        session,
        settings,
        user_id,
        watch_id,
        lambda s, user: signal_services(s, settings, user),
        market,
        market_clock,
        wall,
    )


def _store_clock(session: Session, watch: Watch, wall: Clock) -> Clock:
    """The candle store's time for `watch`: the wall clock, but never past the close of its latest stored bar."""
    stored = markets.stored_series(session, watch.exchange_id, watch.symbol, watch.timeframe)
    if stored is None:
        return wall  # nothing stored: the run fails at its candles step and says so
    last_close = stored.last_close
    return lambda: min(wall(), last_close)
