"""The JSON form of a watch and its latest run (the CLI's `watch list --json`; the REST API next)."""

from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from app.errors import shown
from app.services.watches import WatchView


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else shown(value)


class LastRunOut(BaseModel):
    status: str
    bar_time: str  # open time of the bar analysed, ISO-8601 UTC
    failed_step: str | None
    error_code: str | None
    error_message: str | None


class WatchOut(BaseModel):
    id: int
    symbol: str
    timeframe: str
    schedule: str  # "on every 1h close"
    exchange: str
    signal_source: str
    params: dict[str, Any]
    account_id: int | None
    max_cost_per_call_usd: str | None  # None: no cap
    daily_budget_usd: str | None
    auto_execute: bool  # False: advice only
    enabled: bool  # False: paused
    last_bar_at: str | None
    last_run: LastRunOut | None

    @classmethod
    def of(cls, view: WatchView) -> "WatchOut":
        watch, run = view.watch, view.last_run
        return cls(
            id=watch.id,
            symbol=watch.symbol,
            timeframe=watch.timeframe,
            schedule=view.schedule,
            exchange=watch.exchange_id,
            signal_source=watch.signal_source,
            params=dict(watch.signal_params),
            account_id=watch.account_id,
            max_cost_per_call_usd=_amount(watch.max_cost_per_call_usd),
            daily_budget_usd=_amount(watch.daily_budget_usd),
            auto_execute=watch.auto_execute,
            enabled=watch.enabled,
            last_bar_at=watch.last_bar_at.isoformat() if watch.last_bar_at else None,
            last_run=None
            if run is None
            else LastRunOut(
                status=run.status.value,
                bar_time=run.bar_time.isoformat(),
                failed_step=run.failed_step,
                error_code=run.error_code,
                error_message=run.error_message,
            ),
        )
