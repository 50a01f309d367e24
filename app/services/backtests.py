"""Backtests as records: validate a request, record it, run it with progress, keep its results and report files,
list and delete them. The engine itself is Flask-free in `backtest/`.

Only runs that can start are recorded: `prepare` validates everything first and writes nothing. A run that fails
later records the step it failed in and a readable reason.

As jobs: a front end records a run QUEUED; a worker (the scheduler's pool, or a Celery worker) claims it
(QUEUED -> RUNNING, exactly once: a second delivery finds it claimed) and beats a heartbeat as it makes progress.
A RUNNING backtest whose heartbeat stopped (its worker died) is failed with that reason when a worker starts.
"""

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ConflictError, NotFoundError, ServiceError
from app.models import Backtest, BacktestStatus
from app.services import Clock, api_keys, system_clock
from app.services.analysis_inputs import signal_chain
from app.services.backtest_setup import BacktestRequest, Prepared, prepare
from app.services.lookup import owned
from app.services.pages import Page, page_of
from backtest.chart_data import chart_panes
from backtest.report import write_html, write_summary_json, write_trades_csv
from backtest.results import AiUsage, BacktestReport, report_json
from backtest.runner import run_backtest

__all__ = ["BacktestRequest", "Prepared", "prepare"]

log = logging.getLogger(__name__)
CHART_FILE = "chart.json"  # backtest.chart_data.chart_panes, for the web page's charts
PROGRESS_WRITE_STEP = 0.05
HEARTBEAT_SECONDS = 15.0  # progress (and the heartbeat) is written at least this often while bars are processed
# A RUNNING backtest whose heartbeat is older than this lost its worker: comfortably above HEARTBEAT_SECONDS, and
# above the longest a single bar can take (one provider call with its timeout and retries).
DEAD_AFTER = timedelta(minutes=5)


class BacktestFailedError(ServiceError):
    """A recorded run that could not finish; the record holds the step and the reason."""

    code = "BACKTEST_FAILED"
    http_status = 422


def reports_dir(settings: Settings, backtest_id: int) -> Path:
    return settings.instance_path / "reports" / f"backtest-{backtest_id}"


def record_backtest(
    session: Session,
    prepared: Prepared,
    worker: str | None = None,
    now: datetime | None = None,
) -> Backtest:
    """Record a validated run as QUEUED, for a job to run; or, given the `worker` that runs it right away (the CLI
    in the foreground), as RUNNING by that worker, so no job picks it up. The caller commits."""
    request = prepared.inputs.request
    record = Backtest(
        user_id=request.user_id,
        exchange_id=request.exchange_id,
        symbol=request.symbol,
        timeframe=request.timeframe,
        signal_source=request.signals,
        signal_params=dict(request.params),
        settings={"request": asdict(request)},
        status=BacktestStatus.QUEUED,
    )
    if worker is not None:
        started = now or system_clock()
        record.status, record.worker, record.started_at, record.heartbeat_at = (
            BacktestStatus.RUNNING,
            worker,
            started,
            started,
        )
    session.add(record)
    session.flush()
    return record


def create_backtest(
    session: Session, settings: Settings, request: BacktestRequest, now: Clock = system_clock
) -> Backtest:
    """Validate `request` and record it as QUEUED, for a job to run. Raises what `prepare` raises; writes nothing
    then. The caller commits.

    Through an API key (`request.api_key_id`) the key must allow the source's models (`ForbiddenError`
    `MODEL_NOT_ALLOWED`), and a paid run's `max_cost` must fit in what is left of the key's own daily and monthly
    caps (`BudgetRefusedError`): the worker's calls are not charged to the key as they happen, so the whole
    allowance is checked up front."""
    chain = signal_chain(request.signals)
    key = api_keys.usable_key(session, request.user_id, request.api_key_id, chain)
    prepared = prepare(session, settings, request)
    if key is not None and request.max_cost is not None and not request.cache_only and any(s.is_paid for s in chain):
        api_keys.check_allowance(session, key, Decimal(request.max_cost), now())
    return record_backtest(session, prepared)


def run_recorded_backtest(
    session: Session,
    settings: Settings,
    backtest_id: int,
    prepared: Prepared | None = None,
    on_progress: Callable[[float], None] | None = None,
    clock: Clock = system_clock,
    worker: str | None = None,
) -> tuple[Backtest, BacktestReport]:
    """Run a recorded backtest (prepared again from its stored request unless `prepared` is given) as `worker`.

    A QUEUED record is claimed first (see `claim_backtest`); a RUNNING one only runs here when `worker` recorded it
    so (`record_backtest(..., worker=...)`). Anything else raises `ConflictError` and changes nothing: a job
    delivered twice runs once. Commits the RUNNING state, progress with a heartbeat (every 5% and at least every
    15 s), and the outcome. Raises `BacktestFailedError` (after recording the step and reason on the record) when
    the run cannot finish or an AI run got no answers at all.
    """
    record = session.get(Backtest, backtest_id)
    if record is None:
        raise NotFoundError(f"no backtest #{backtest_id}", field="backtest_id")
    mine = record.status is BacktestStatus.RUNNING and worker is not None and record.worker == worker
    if not mine and not claim_backtest(session, backtest_id, worker, clock()):
        session.refresh(record)
        raise ConflictError(
            f"backtest #{backtest_id} is not queued (it is {record.status.value}"
            + (f", worker {record.worker}" if record.worker else "")
            + ")",
            field="backtest_id",
        )
    step = "preparing"
    try:
        if prepared is None:
            prepared = prepare(session, settings, BacktestRequest(**record.settings["request"]))
        step = "running"
        inputs = prepared.inputs
        report = run_backtest(
            inputs.candles,
            inputs.market,
            inputs.engine_settings,
            prepared.source,
            inputs.first_decision,
            described=inputs.described,
            ai_usage=prepared.ai_usage,
            warnings=inputs.warnings,
            progress=_progress_writer(session, backtest_id, on_progress, clock),
        )
        step = "checking the answers"
        _check_answers(prepared, report)
    except ServiceError as error:
        # A run that got as far as its answers keeps its AI counts: what it cost and missed is worth seeing.
        ai = prepared.ai_usage() if prepared is not None and step == "checking the answers" else None
        _fail(session, backtest_id, f"{step}: {error.message}", clock(), ai)
        raise BacktestFailedError(error.message, field=error.field, details=error.details) from None
    except Exception as error:
        _fail(session, backtest_id, f"{step}: {error.__class__.__name__}: {error}", clock())
        log.exception("backtest failed", extra={"backtest_id": backtest_id})
        raise
    record = _store_results(session, backtest_id, prepared, report, clock())
    folder = reports_dir(settings, backtest_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_html(report, folder / "report.html")
    write_trades_csv(report.trades, folder / "trades.csv")
    write_summary_json(report, folder / "summary.json")
    chart = chart_panes(report, prepared.inputs.candles)
    (folder / CHART_FILE).write_text(json.dumps(chart, allow_nan=False), encoding="utf-8")
    return record, report


def _progress_writer(
    session: Session, backtest_id: int, on_progress: Callable[[float], None] | None, clock: Clock
) -> Callable[[float], None]:
    written = [0.0]
    beat = [clock()]

    def progress(fraction: float) -> None:
        if on_progress is not None:
            on_progress(fraction)
        now = clock()
        if fraction - written[0] >= PROGRESS_WRITE_STEP or (now - beat[0]).total_seconds() >= HEARTBEAT_SECONDS:
            written[0], beat[0] = max(fraction, written[0]), now
            session.execute(
                update(Backtest)
                .where(Backtest.id == backtest_id)
                .values(progress=min(max(fraction, 0.0), 1.0), heartbeat_at=now)
            )
            session.commit()

    return progress


def claim_backtest(session: Session, backtest_id: int, worker: str | None, now: datetime) -> bool:
    """QUEUED -> RUNNING by `worker`, in one conditional UPDATE: exactly one of several claimants wins (the others,
    and a job delivered again, get False). Commits."""
    claimed = session.execute(
        update(Backtest)
        .where(Backtest.id == backtest_id, Backtest.status == BacktestStatus.QUEUED)
        .values(status=BacktestStatus.RUNNING, worker=worker, started_at=now, heartbeat_at=now, progress=0.0)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(claimed, "rowcount", 0) == 1)


def queued_backtest_ids(session: Session) -> list[int]:
    """Backtests waiting for a worker, oldest first."""
    query = select(Backtest.id).where(Backtest.status == BacktestStatus.QUEUED).order_by(Backtest.id)
    return list(session.scalars(query))


def fail_dead_backtests(session: Session, now: datetime, dead_after: timedelta = DEAD_AFTER) -> list[int]:
    """Fail every RUNNING backtest whose heartbeat (or start, without one) is older than `dead_after`: the worker
    running it stopped. Workers and the scheduler call this when they start. Returns the ids. Commits."""
    cutoff = now - dead_after
    running = session.scalars(select(Backtest).where(Backtest.status == BacktestStatus.RUNNING).order_by(Backtest.id))
    dead = []
    for record in running:
        last = record.heartbeat_at or record.started_at
        if last is not None and last >= cutoff:
            continue
        seen = f"{last:%Y-%m-%d %H:%M:%S} UTC" if last is not None else "never"
        worker = f", worker {record.worker}" if record.worker else ""
        record.status, record.finished_at = BacktestStatus.FAILED, now
        record.error_message = f"the worker running it stopped (last heartbeat {seen}{worker})"
        dead.append(record.id)
    session.commit()
    if dead:
        log.warning("backtests failed: their worker stopped", extra={"backtest_ids": dead})
    return dead


def _check_answers(prepared: Prepared, report: BacktestReport) -> None:
    """An AI run without answers is no strategy result: refuse to present it beside the baselines."""
    ai = report.ai
    failures = prepared.failures()
    unanswered = sum(failures.values())
    if prepared.ai is None or not ai.decisions or not unanswered:
        return
    if unanswered >= ai.decisions:
        if prepared.paid:
            codes = ", ".join(f"{code} x{count:,}" for code, count in sorted(failures.items()))
            message = f"no AI answers: all {ai.decisions:,} decisions failed ({codes})"
        else:
            message = (
                f"no AI answers ({ai.cache_misses:,} misses of {ai.decisions:,} decisions): the cache answered none "
                "and cache-only never calls a provider"
            )
        raise BacktestFailedError(message, details={"decisions": ai.decisions, "failures": failures})
    report.warnings.append(
        f"the AI answered {ai.decisions - unanswered:,} of {ai.decisions:,} decisions; "
        f"the {unanswered:,} without an answer were treated as HOLD"
    )


def _fail(session: Session, backtest_id: int, reason: str, now: datetime, ai: AiUsage | None = None) -> None:
    session.rollback()
    record = session.get(Backtest, backtest_id)
    if record is not None:
        record.status, record.error_message, record.finished_at = BacktestStatus.FAILED, reason, now
        if ai is not None:
            record.ai_cost_usd, record.ai_cache_hits, record.ai_cache_misses = (
                ai.cost_usd,
                ai.cache_hits,
                ai.cache_misses,
            )
        session.commit()


def _store_results(
    session: Session, backtest_id: int, prepared: Prepared, report: BacktestReport, now: datetime
) -> Backtest:
    record = session.get(Backtest, backtest_id)
    assert record is not None  # run_recorded_backtest read this record when the run began
    summary = report_json(report)
    record.status, record.progress, record.finished_at = BacktestStatus.SUCCEEDED, 1.0, now
    record.window_start = _utc(report.curve.times[0])
    record.window_end = _utc(report.curve.times[-1])
    record.metrics, record.baselines = summary["metrics"], summary["baselines"]
    record.ai_cost_usd = report.ai.cost_usd
    record.ai_cache_hits, record.ai_cache_misses = report.ai.cache_hits, report.ai.cache_misses
    record.settings = {**record.settings, "run": summary["settings"], "warnings": report.warnings}
    if prepared.after_success is not None:
        prepared.after_success(session)
    session.commit()
    return record


def get_backtest(session: Session, user_id: int, backtest_id: int) -> Backtest:
    """One of the user's backtests; `NotFoundError` when missing or someone else's."""
    return owned(session, Backtest, backtest_id, user_id)


def list_backtests(session: Session, user_id: int, limit: int = 50) -> list[Backtest]:
    """The user's backtests, newest first."""
    query = select(Backtest).where(Backtest.user_id == user_id).order_by(Backtest.id.desc()).limit(limit)
    return list(session.scalars(query))


def backtests_page(session: Session, user_id: int, limit: int, before_id: int | None) -> Page[Backtest]:
    """A cursor page of the user's backtests, newest first (`app.services.pages.page_of`)."""
    return page_of(session, select(Backtest).where(Backtest.user_id == user_id), Backtest.id, limit, before_id)


@dataclass(frozen=True)
class BacktestView:
    """One of the user's backtests as recorded, with what its finished run left in its report folder."""

    record: Backtest
    # `backtest.results.report_json` of a SUCCEEDED run (settings, metrics, baselines, ai, trades, gaps, warnings),
    # read back from its summary.json; None before it finished, after it failed, or when the files are gone.
    summary: dict[str, Any] | None
    has_report: bool  # report.html is there to be served


def view_backtest(session: Session, settings: Settings, user_id: int, backtest_id: int) -> BacktestView:
    """One of the user's backtests with its stored results; `NotFoundError` when missing or someone else's."""
    record = get_backtest(session, user_id, backtest_id)
    if record.status is not BacktestStatus.SUCCEEDED:
        return BacktestView(record, None, False)
    folder = reports_dir(settings, backtest_id)
    return BacktestView(record, _summary(folder / "summary.json"), (folder / "report.html").is_file())


def _summary(path: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # The record keeps metrics, baselines and AI counts; only trades and gaps live in the files alone.
        log.warning("backtest summary unreadable", extra={"path": str(path)})
        return None
    return summary if isinstance(summary, dict) else None


def report_file(session: Session, settings: Settings, user_id: int, backtest_id: int) -> Path:
    """The HTML report of one of the user's succeeded backtests; `NotFoundError` when there is none: the run is
    queued, running or failed, or its files were removed."""
    record = get_backtest(session, user_id, backtest_id)
    path = reports_dir(settings, backtest_id) / "report.html"
    # Only a run that succeeded wrote its own files: a folder under the id of a run that did not (yet) is left
    # over from an earlier record with the same id (SQLite may reuse the highest id once its row is gone).
    if record.status is not BacktestStatus.SUCCEEDED or not path.is_file():
        why = "" if record.status is BacktestStatus.SUCCEEDED else f": it is {record.status.value}"
        raise NotFoundError(
            f"backtest #{backtest_id} has no report{why}",
            field="backtest_id",
            details={"id": backtest_id, "status": record.status.value},
        )
    return path


def delete_backtest(session: Session, settings: Settings, user_id: int, backtest_id: int) -> None:
    """Delete one of the user's backtests and its report files. A running one cannot be deleted (`ConflictError`).
    The caller commits; the report folder is removed at once."""
    record = get_backtest(session, user_id, backtest_id)
    if record.status is BacktestStatus.RUNNING:
        raise ConflictError(f"backtest #{backtest_id} is running: wait for it to finish", field="backtest_id")
    session.delete(record)
    session.flush()
    shutil.rmtree(reports_dir(settings, backtest_id), ignore_errors=True)


def _utc(value: np.datetime64) -> datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()
