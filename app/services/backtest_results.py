"""What a user's backtest shows on its page: its record, the report's sections (metrics beside the baselines, AI
usage, trades, gaps, settings) read back from the run's summary.json, and the chart data its run wrote.

The sections are the standalone report's own (`backtest.report`), so the page and the report file say the same.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import NotFoundError
from app.models import Backtest, BacktestStatus
from app.services.backtests import CHART_FILE, get_backtest, reports_dir, view_backtest
from backtest.report import ReportView, summary_view

log = logging.getLogger(__name__)
FINISHED = frozenset({BacktestStatus.SUCCEEDED, BacktestStatus.FAILED})


@dataclass(frozen=True)
class BacktestResults:
    """One backtest for its page. `sections` is None unless it succeeded and its summary.json is readable;
    `has_chart`/`has_report` say whether chart.json/report.html are there to be served."""

    record: Backtest
    sections: ReportView | None
    has_chart: bool
    has_report: bool

    @property
    def finished(self) -> bool:
        return self.record.status in FINISHED


def window_text(record: Backtest) -> str:
    """ "2024-08-01 00:00 → 2024-09-06 03:00 UTC" once the run has set its window, else the requested dates
    ("2024-08-01 → last bar")."""
    if record.window_start is not None and record.window_end is not None:
        return f"{record.window_start:%Y-%m-%d %H:%M} → {record.window_end:%Y-%m-%d %H:%M} UTC"
    request = record.settings.get("request", {}) if isinstance(record.settings, dict) else {}
    start = str(request.get("start") or "first bar")[:10]
    end = str(request.get("end") or "last bar")[:10]
    return f"{start} → {end}"


def backtest_results(session: Session, settings: Settings, user_id: int, backtest_id: int) -> BacktestResults:
    """One of the user's backtests with what its run left; `NotFoundError` when missing or someone else's."""
    view = view_backtest(session, settings, user_id, backtest_id)
    record, sections = view.record, None
    if view.summary is not None:
        bars = view.summary.get("settings", {}).get("bars")
        try:
            sections = summary_view(view.summary, window_text(record), int(bars) if bars is not None else 0)
        except (KeyError, ValueError, TypeError):
            log.warning("backtest summary malformed", extra={"backtest_id": backtest_id})
    succeeded = record.status is BacktestStatus.SUCCEEDED
    chart = reports_dir(settings, backtest_id) / CHART_FILE
    return BacktestResults(record, sections, succeeded and chart.is_file(), view.has_report)


def chart_file(session: Session, settings: Settings, user_id: int, backtest_id: int) -> Path:
    """The chart data (`backtest.chart_data.chart_panes` as JSON) of one of the user's succeeded backtests;
    `NotFoundError` when it is missing or someone else's, not finished, or ran before charts were written."""
    record = get_backtest(session, user_id, backtest_id)
    path = reports_dir(settings, backtest_id) / CHART_FILE
    # Like the report: only a succeeded run wrote its own files (a failed one may sit on an old folder's id).
    if record.status is not BacktestStatus.SUCCEEDED or not path.is_file():
        raise NotFoundError(f"backtest #{backtest_id} has no chart data", field="backtest_id")
    return path
