"""The JSON form of a watch and its latest run (the CLI's `watch list --json` and `/api/v1/watches`), the API's
watch requests, and a run with its analysis and decision."""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool

from app.errors import shown
from app.schemas.analyses import ReasonOut
from app.schemas.common import BodyId, PageQuery, RecordId, RequestModel, RuleParams, optional_amount
from app.services.run_history import RunView
from app.services.watches import KEEP, NewWatch, WatchChange, WatchView


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
            max_cost_per_call_usd=optional_amount(watch.max_cost_per_call_usd),
            daily_budget_usd=optional_amount(watch.daily_budget_usd),
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


class WatchCreatedOut(WatchOut):
    warnings: list[str]  # said once, at creation: e.g. the replay has too little history yet for the indicators

    @classmethod
    def of(cls, view: WatchView) -> "WatchCreatedOut":
        return cls(**WatchOut.of(view).model_dump(), warnings=list(view.warnings))


class WatchPage(BaseModel):
    items: list[WatchOut]
    next_cursor: str | None


class WatchPath(BaseModel):
    watch_id: RecordId


class WatchesQuery(PageQuery):
    pass


class RunsQuery(PageQuery):
    pass


# A budget as sent: an amount in USD >= 0 (0 allows no paid call); null means no cap.
BudgetUsd = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=16, decimal_places=6)]
SignalSource = Annotated[
    str,
    Field(
        min_length=1,
        max_length=80,
        description="deepseek[:MODEL], claude[:MODEL], rules:STRATEGY or a fallback chain joined by ->",
    ),
]


class WatchIn(RequestModel):
    """A new watch: `symbol` analysed on every close of `timeframe` by `signal_source`, within its budgets."""

    symbol: str = Field(min_length=3, max_length=32, description="e.g. BTC/USDT")
    timeframe: str = Field("1h", min_length=2, max_length=4, description="candle timeframe; runs on each close")
    signal_source: SignalSource
    params: RuleParams = Field(default_factory=dict)
    exchange: str = Field("binance", min_length=2, max_length=32)
    account_id: BodyId | None = Field(None, description="the account the risk manager judges signals for")
    max_cost_per_call_usd: BudgetUsd | None = Field(None, description="cap on one paid call in USD; null: no cap")
    daily_budget_usd: BudgetUsd | None = Field(None, description="cap on this watch's spend per UTC day; null: no cap")
    auto_execute: StrictBool = Field(False, description="place approved orders on the account (needs the trade scope)")

    def to_new_watch(self, api_key_id: int | None = None) -> NewWatch:
        return NewWatch(
            symbol=self.symbol,
            timeframe=self.timeframe,
            signals=self.signal_source,
            exchange_id=self.exchange,
            params=dict(self.params),
            account_id=self.account_id,
            max_cost_per_call_usd=self.max_cost_per_call_usd,
            daily_budget_usd=self.daily_budget_usd,
            auto_execute=self.auto_execute,
            api_key_id=api_key_id,
        )


_NOT_SENT: Any = None


class WatchChangeIn(RequestModel):
    """What to change; a field left out stays as it is. `null` means "none" for `account_id` and the budgets."""

    # These have no "none": the document declares them non-null and pydantic refuses a null, while leaving one out
    # still works (a default is never validated). Such an attribute is None only when not sent (see `to_change`).
    signal_source: SignalSource = Field(_NOT_SENT)
    params: RuleParams = Field(_NOT_SENT, description="replace the stored parameters")
    account_id: BodyId | None = None
    max_cost_per_call_usd: BudgetUsd | None = None
    daily_budget_usd: BudgetUsd | None = None
    auto_execute: StrictBool = Field(_NOT_SENT)

    def to_change(self, api_key_id: int | None = None) -> WatchChange:
        sent = self.model_fields_set

        def given(name: str) -> Any:
            return getattr(self, name) if name in sent else KEEP

        return WatchChange(
            signals=given("signal_source"),
            params=dict(self.params) if "params" in sent else KEEP,
            account_id=given("account_id"),
            max_cost_per_call_usd=given("max_cost_per_call_usd"),
            daily_budget_usd=given("daily_budget_usd"),
            auto_execute=given("auto_execute"),
            api_key_id=api_key_id,
        )


class RunSignalOut(BaseModel):
    analysis_status: str  # ok, invalid, failed or refused (then the action is a HOLD nobody acts on)
    action: str | None  # BUY, SELL or HOLD; None when no valid signal came
    confidence: int | None
    cost_usd: str


class RunDecisionOut(BaseModel):
    id: int
    account_id: int
    approved: bool
    reasons: list[ReasonOut]
    order_spec: dict[str, Any] | None


class WatchRunOut(BaseModel):
    id: int
    watch_id: int
    bar_time: str  # open time of the bar analysed, ISO-8601 UTC
    trigger: str  # schedule, catch_up or manual
    status: str  # queued, running, succeeded or failed
    failed_step: str | None
    error_code: str | None
    error_message: str | None
    steps: list[dict[str, Any]]  # [{"step": "candles", "ms": 12.5, "outcome": "ok"}, ...]
    created_at: str
    started_at: str | None
    finished_at: str | None
    analysis_id: int | None
    order_id: int | None
    signal: RunSignalOut | None
    decision: RunDecisionOut | None

    @classmethod
    def of(cls, view: RunView) -> "WatchRunOut":
        run, analysis, decision = view.run, view.analysis, view.decision
        signal = (analysis.signal or {}) if analysis is not None else {}
        return cls(
            id=run.id,
            watch_id=run.watch_id,
            bar_time=run.bar_time.isoformat(),
            trigger=run.trigger,
            status=run.status.value,
            failed_step=run.failed_step,
            error_code=run.error_code,
            error_message=run.error_message,
            steps=list(run.steps or []),
            created_at=run.created_at.isoformat(),
            started_at=run.started_at.isoformat() if run.started_at else None,
            finished_at=run.finished_at.isoformat() if run.finished_at else None,
            analysis_id=run.analysis_id,
            order_id=run.order_id,
            signal=None
            if analysis is None
            else RunSignalOut(
                analysis_status=analysis.status.value,
                action=signal.get("action"),
                confidence=signal.get("confidence"),
                cost_usd=shown(analysis.cost_usd),
            ),
            decision=None
            if decision is None
            else RunDecisionOut(
                id=decision.id,
                account_id=decision.account_id,
                approved=decision.approved,
                reasons=[
                    ReasonOut(code=r.get("code", ""), message=r.get("message", ""), values=r.get("values") or {})
                    for r in decision.reasons
                ],
                order_spec=decision.order_spec,
            ),
        )


class RunNowOut(WatchRunOut):
    summary: str  # one line for a person: the signal, the decision and the order, or where the run failed

    @classmethod
    def of_run(cls, view: RunView, summary: str) -> "RunNowOut":
        return cls(**WatchRunOut.of(view).model_dump(), summary=summary)


class RunPage(BaseModel):
    items: list[WatchRunOut]
    next_cursor: str | None
