"""The JSON forms of a backtest: a finished run's results (README documents these field names), a record, the
request that queues one (REST API) and a record with its stored results."""

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool

from app.errors import shown
from app.models import Backtest, BacktestStatus
from app.schemas.common import PageQuery, RecordId, RequestModel, Usd
from app.services.backtests import BacktestView
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


def _time(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


class BacktestOut(BaseModel):
    id: int
    status: str = Field(description="queued, running, succeeded or failed")
    progress: float = Field(description="fraction of the decision bars processed, 0 to 1")
    exchange: str
    symbol: str
    timeframe: str
    signal_source: str
    params: dict[str, Any]
    window_start: str | None = Field(description="first decision bar, ISO-8601 UTC; known once the run finished")
    window_end: str | None
    error_message: str | None = Field(description="a failed run's step and reason")
    ai_cost_usd: str = Field(description="what the run's AI calls cost so far, USD")
    created_at: str
    started_at: str | None
    finished_at: str | None

    @classmethod
    def of(cls, record: Backtest) -> "BacktestOut":
        return cls(
            id=record.id,
            status=record.status.value,
            progress=record.progress,
            exchange=record.exchange_id,
            symbol=record.symbol,
            timeframe=record.timeframe,
            signal_source=record.signal_source,
            params=dict(record.signal_params or {}),
            window_start=_time(record.window_start),
            window_end=_time(record.window_end),
            error_message=record.error_message,
            ai_cost_usd=shown(record.ai_cost_usd),
            created_at=record.created_at.isoformat(),
            started_at=_time(record.started_at),
            finished_at=_time(record.finished_at),
        )


class BacktestResultsOut(BaseModel):
    """A finished run's results. Metrics, baselines and AI counts are kept on the record; trades, gaps and the
    run's settings come from its report files (`trades` and `gaps` are None when those files are gone)."""

    settings: dict[str, Any] = Field(description="the run as the report shows it: fees, slippage, risk, source...")
    metrics: dict[str, Any] = Field(description="total_return_pct, cagr_pct, max_drawdown_pct, sharpe, trades...")
    baselines: dict[str, dict[str, Any]] = Field(description="the same metrics for buy-and-hold and the like")
    ai: AiUsageOut
    trades: list[dict[str, Any]] | None = Field(
        description="entry_time, exit_time (ISO-8601 UTC), entry_price, exit_price, qty, pnl, fees..."
    )
    gaps: list[dict[str, Any]] | None = Field(description="holes in the candles the window spans")
    warnings: list[str]
    report_url: str | None = Field(description="the HTML report (GET, text/html); None when its file is gone")

    @classmethod
    def of(cls, view: BacktestView, report_url: str) -> "BacktestResultsOut":
        record, summary = view.record, view.summary or {}
        ai = summary.get("ai") or {}
        return cls(
            settings=summary.get("settings") or dict(record.settings.get("run") or {}),
            metrics=dict(record.metrics or {}),
            baselines=dict(record.baselines or {}),
            ai=AiUsageOut(
                decisions=int(ai.get("decisions", record.ai_cache_hits + record.ai_cache_misses)),
                cache_hits=record.ai_cache_hits,
                cache_misses=record.ai_cache_misses,
                cost_usd=shown(record.ai_cost_usd),
                estimated_cost_usd=ai.get("estimated_cost_usd"),
            ),
            trades=summary.get("trades") if view.summary is not None else None,
            gaps=summary.get("gaps") if view.summary is not None else None,
            warnings=list(record.settings.get("warnings") or summary.get("warnings") or []),
            report_url=report_url if view.has_report else None,
        )


class BacktestDetailOut(BacktestOut):
    """A backtest's status and progress; once it succeeded, its results."""

    results: BacktestResultsOut | None = Field(None, description="present once status is succeeded")

    @classmethod
    def of_view(cls, view: BacktestView, report_url: str) -> "BacktestDetailOut":
        results = BacktestResultsOut.of(view, report_url) if view.record.status is BacktestStatus.SUCCEEDED else None
        return cls(**BacktestOut.of(view.record).model_dump(), results=results)


class BacktestPage(BaseModel):
    items: list[BacktestOut]
    next_cursor: str | None


class BacktestsQuery(PageQuery):
    pass


class BacktestPath(BaseModel):
    backtest_id: RecordId


# A decimal as a JSON number or a string ("0.001"): the service checks each one's range and names it.
Number = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=24, decimal_places=12)]
ParamName = Annotated[str, Field(min_length=1, max_length=40)]
ParamValue = Annotated[str, Field(max_length=100)]


class BacktestIn(RequestModel):
    """A backtest over stored candles, queued for a worker: the same options as the `backtest` command (no candle
    file: the API reads the candle store only)."""

    symbol: str = Field(min_length=3, max_length=32, description="e.g. BTC/USDT")
    timeframe: str = Field("1h", min_length=2, max_length=4, description="candle timeframe, e.g. 1h, 4h, 1d")
    signal_source: str = Field(
        min_length=1,
        max_length=80,
        description="one signal source: rules:STRATEGY, replay[:PROVIDER[:MODEL]], deepseek[:MODEL], claude[:MODEL]",
    )
    params: dict[ParamName, ParamValue] = Field(
        default_factory=dict, max_length=20, description='a rules strategy\'s parameters, e.g. {"fast": "10"}'
    )
    exchange: str = Field("binance", min_length=2, max_length=32)
    start: date | None = Field(None, description="first decision day, UTC (YYYY-MM-DD); default: the first bar")
    end: date | None = Field(None, description="last day, UTC (YYYY-MM-DD), included; default: the last bar")
    every: int = Field(1, ge=1, le=10_000, description="decide every N bars")
    fee_rate: Number = Field(Decimal("0.001"), description="per fill, as a fraction: 0.001 is 0.1%")
    slippage_bps: Number = Field(Decimal(0), description="basis points against each fill")
    balance: Number = Field(Decimal(100), description="starting balance in the quote currency")
    risk: dict[Annotated[str, Field(max_length=64)], Any] = Field(
        default_factory=dict, max_length=50, description="risk-setting overrides, as in the risk settings file"
    )
    cache_only: StrictBool = Field(False, description="AI answers from the response cache only: never calls a provider")
    max_cost_usd: Usd | None = Field(
        None, description="refuse (402) a paid run whose estimated AI cost is above this many USD"
    )
    blind: StrictBool | None = Field(
        None, description="hide ticker and dates from the model (default: on for AI sources)"
    )
    allow_gaps: StrictBool = Field(False, description="run across gaps in the data longer than max_gap_bars")
    max_gap_bars: int = Field(
        24, ge=0, le=100_000, description="the longest gap (missing bars) a window may span without allow_gaps"
    )
