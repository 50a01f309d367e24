"""The JSON forms of a backtest: a finished run's results (README documents these field names) and a record."""

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.models import Backtest
from backtest.results import BacktestReport, report_json


class AiUsageOut(BaseModel):
    decisions: int
    cache_hits: int
    cache_misses: int
    cost_usd: str
    estimated_cost_usd: str | None


class BacktestResultOut(BaseModel):
    backtest_id: int
    settings: dict[str, Any]
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    ai: AiUsageOut
    trades: list[dict[str, Any]]  # entry_time, exit_time (ISO-8601 UTC), entry_price, exit_price, qty, pnl, fees...
    gaps: list[dict[str, Any]]
    warnings: list[str]
    reports: str  # the folder with report.html, trades.csv and summary.json

    @classmethod
    def of(cls, backtest_id: int, report: BacktestReport, folder: Path) -> "BacktestResultOut":
        return cls(backtest_id=backtest_id, **report_json(report), reports=str(folder))


class BacktestOut(BaseModel):
    id: int
    status: str
    progress: float
    symbol: str
    timeframe: str
    signal_source: str
    window_start: str | None
    window_end: str | None
    error_message: str | None
    created_at: str

    @classmethod
    def of(cls, record: Backtest) -> "BacktestOut":
        return cls(
            id=record.id,
            status=record.status.value,
            progress=record.progress,
            symbol=record.symbol,
            timeframe=record.timeframe,
            signal_source=record.signal_source,
            window_start=record.window_start.isoformat() if record.window_start else None,
            window_end=record.window_end.isoformat() if record.window_end else None,
            error_message=record.error_message,
            created_at=record.created_at.isoformat(),
        )
