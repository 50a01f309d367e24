"""The JSON form of an analysis, its risk decision and its order (README documents these field names)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from app.errors import shown
from app.models import Analysis
from app.schemas.common import BodyId, PageQuery, RecordId, RequestModel, RuleParams, Usd
from app.services.analyses import AnalysisResult
from app.services.trading import TradeResult


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class ReasonOut(BaseModel):
    code: str
    message: str
    values: dict[str, Any] = {}


class UsageOut(BaseModel):
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int


class AttemptOut(BaseModel):
    source: str
    result: str
    cost_usd: str
    detail: str = ""


class OrderOut(BaseModel):
    client_order_id: str
    status: str
    side: str
    quantity: str
    filled: str
    average_price: str | None
    fee: str
    fee_currency: str | None
    error_code: str | None


class DecisionOut(BaseModel):
    id: int
    approved: bool
    reasons: list[dict[str, Any]]
    order_spec: dict[str, Any] | None
    order: OrderOut | None
    notes: list[str]

    @classmethod
    def of(cls, trade: TradeResult) -> "DecisionOut":
        decision, order = trade.decision, trade.order
        return cls(
            id=decision.id,
            approved=decision.approved,
            reasons=decision.reasons,
            order_spec=decision.order_spec,
            order=None
            if order is None
            else OrderOut(
                client_order_id=order.client_order_id,
                status=order.status.value,
                side=order.side.value,
                quantity=str(order.quantity),
                filled=str(order.filled_quantity),
                average_price=_amount(order.average_fill_price),
                fee=str(order.fee),
                fee_currency=order.fee_currency,
                error_code=order.error_code,
            ),
            notes=trade.notes,
        )


class AnalysisOut(BaseModel):
    analysis_id: int
    status: str
    signal: dict[str, Any]
    reasons: list[ReasonOut]
    provider: str
    model: str | None
    source: str
    bar_time: str
    cost_usd: str
    original_cost_usd: str | None
    cached: bool
    usage: UsageOut
    latency_ms: int
    attempts: list[AttemptOut]
    warnings: list[str]
    decision: DecisionOut | None = None

    @classmethod
    def of(cls, result: AnalysisResult) -> "AnalysisOut":
        outcome, analysis = result.outcome, result.analysis
        usage = outcome.usage
        return cls(
            analysis_id=analysis.id,
            status=outcome.status.value,
            signal=outcome.signal.model_dump(mode="json"),
            reasons=[ReasonOut(code=r.code, message=r.message, values=r.values) for r in outcome.reasons],
            provider=outcome.provider,
            model=outcome.model,
            source=outcome.source,
            bar_time=analysis.bar_time.isoformat(),
            cost_usd=str(outcome.cost_usd),
            original_cost_usd=_amount(outcome.original_cost_usd),
            cached=outcome.cached,
            usage=UsageOut(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            ),
            latency_ms=outcome.latency_ms,
            attempts=[
                AttemptOut(source=a.source, result=a.result, cost_usd=str(a.cost_usd), detail=a.detail)
                for a in outcome.attempts
            ],
            warnings=result.warnings,
            decision=DecisionOut.of(result.trade) if result.trade else None,
        )

    def to_json(self) -> dict[str, Any]:
        """Without `decision` when no account judged the signal (as the CLI has always printed it)."""
        return self.model_dump(
            mode="json", exclude_none=False, exclude={"decision"} if self.decision is None else set()
        )


class AnalyzeIn(RequestModel):
    """One analysis on the latest closed bar of the configured market (STEADYHAND_MARKET)."""

    symbol: str = Field(min_length=3, max_length=32, description="e.g. BTC/USDT")
    timeframe: str = Field("1h", min_length=2, max_length=4, description="candle timeframe, e.g. 1h, 4h, 1d")
    signal_source: str = Field(
        min_length=1,
        max_length=80,
        description="deepseek[:MODEL], claude[:MODEL], rules:STRATEGY or a fallback chain joined by ->",
    )
    model: str | None = Field(None, max_length=64, description="the model of the one LLM source, e.g. deepseek-chat")
    params: RuleParams = Field(default_factory=dict, description="a rules strategy's parameters")
    max_cost_usd: Usd | None = Field(
        None, description="refuse before any call whose worst case costs more; required when a paid model is asked"
    )
    account_id: BodyId | None = Field(None, description="the account the risk manager judges the signal for")
    execute: StrictBool = Field(False, description="place the approved order (needs account_id and the trade scope)")
    exchange: str = Field("binance", min_length=2, max_length=32)
    until: datetime | None = Field(
        None, description="analyse the closed bar opened at or before this time (ISO-8601, UTC); default: the latest"
    )


class AnalysesQuery(PageQuery):
    symbol: str | None = Field(None, max_length=32)
    timeframe: str | None = Field(None, max_length=4)
    status: str | None = Field(None, max_length=16, description="ok, invalid, refused or failed")
    watch_id: RecordId | None = None
    account_id: RecordId | None = None


class AnalysisPath(BaseModel):
    analysis_id: RecordId


class AnalysisSummaryOut(BaseModel):
    id: int
    created_at: str
    bar_time: str  # open time of the bar analysed, ISO-8601 UTC
    symbol: str
    timeframe: str
    signal_source: str
    provider: str
    model: str | None
    status: str
    action: str | None
    confidence: int | None
    cost_usd: str
    cached: bool
    error_code: str | None
    watch_id: int | None
    account_id: int | None

    @classmethod
    def of(cls, analysis: Analysis) -> "AnalysisSummaryOut":
        signal = analysis.signal or {}
        return cls(
            id=analysis.id,
            created_at=analysis.created_at.isoformat(),
            bar_time=analysis.bar_time.isoformat(),
            symbol=analysis.symbol,
            timeframe=analysis.timeframe,
            signal_source=analysis.signal_source,
            provider=analysis.provider,
            model=analysis.model,
            status=analysis.status.value,
            action=signal.get("action"),
            confidence=signal.get("confidence"),
            cost_usd=shown(analysis.cost_usd),
            cached=analysis.cached,
            error_code=analysis.error_code,
            watch_id=analysis.watch_id,
            account_id=analysis.account_id,
        )


class AnalysisPage(BaseModel):
    items: list[AnalysisSummaryOut]
    next_cursor: str | None
