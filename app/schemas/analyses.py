"""The JSON form of an analysis, its risk decision and its order (README documents these field names)."""

from decimal import Decimal
from typing import Any

from pydantic import BaseModel

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
