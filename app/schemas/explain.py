"""The JSON form of `explain`: one analysis with its input, answer, cost, risk decision, orders and fills.

Amounts are exact decimal strings next to their currency (`{"amount": "0.03664416", "currency": "USDT"}`); the AI
cost is in USD, order values in the account's quote currency, a fee in the currency it was charged in.
"""

import shlex
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from app.errors import shown
from app.models import Order, Trade, WatchRun
from app.schemas.analyses import ReasonOut, UsageOut
from app.schemas.common import optional_time
from app.services.explain import DecisionTrail, Explanation, Reproduction


class Money(BaseModel):
    amount: str
    currency: str

    @classmethod
    def of(cls, amount: Decimal, currency: str | None) -> "Money":
        return cls(amount=shown(amount), currency=currency or "")

    @classmethod
    def maybe(cls, amount: Decimal | None, currency: str | None) -> "Money | None":
        return None if amount is None else cls.of(amount, currency)


class CacheEntryOut(BaseModel):
    key: str
    provider: str
    model: str
    prompt_version: str
    schema_version: str
    arguments: dict[str, Any] | None
    problem: str | None
    cost: Money
    created_at: str


class ReproductionOut(BaseModel):
    symbol: str
    timeframe: str
    exchange: str
    signals: str
    until: str
    account_id: int | None
    rule_params: dict[str, str] | None  # None: not recorded (a one-off analysis's parameters are not stored)
    expected_cache_key: str | None
    command: str

    @classmethod
    def of(cls, reproduction: Reproduction) -> "ReproductionOut":
        return cls(
            symbol=reproduction.symbol,
            timeframe=reproduction.timeframe,
            exchange=reproduction.exchange_id,
            signals=reproduction.signals,
            until=reproduction.until.isoformat(),
            account_id=reproduction.account_id,
            rule_params=reproduction.rule_params,
            expected_cache_key=reproduction.expected_cache_key,
            command=_command(reproduction),
        )


def _command(reproduction: Reproduction) -> str:
    words = [
        "flask",
        "--app",
        "wsgi",
        "analyze",
        reproduction.symbol,
        "--timeframe",
        reproduction.timeframe,
        "--exchange",
        reproduction.exchange_id,
        "--signals",
        reproduction.signals,
        "--until",
        f"{reproduction.until:%Y-%m-%d %H:%M}",
    ]
    for name, value in (reproduction.rule_params or {}).items():
        words += ["--param", f"{name}={value}"]
    if reproduction.account_id is not None:
        words += ["--account", str(reproduction.account_id)]
    if reproduction.user_email:
        words += ["--user", reproduction.user_email]
    return shlex.join(words)


class InputOut(BaseModel):
    """What the signal source saw: the stored request if there is one, else what is stored and how to rebuild it."""

    stored: bool
    note: str
    cache_key: str | None
    prompt_version: str | None
    schema_version: str | None
    cache_entry: CacheEntryOut | None
    reproduce: ReproductionOut


class CostOut(BaseModel):
    cost: Money
    original_cost: Money | None  # a cache hit's original, paid call
    cached: bool
    latency_ms: int | None
    usage: UsageOut


class FillOut(BaseModel):
    id: int
    executed_at: str
    side: str
    quantity: str
    price: Money
    value: Money
    fee: Money
    fee_value: Money | None  # the fee in the quote currency; None when it could not be valued
    realized_pnl: Money | None

    @classmethod
    def of(cls, fill: Trade, quote: str) -> "FillOut":
        return cls(
            id=fill.id,
            executed_at=fill.executed_at.isoformat(),
            side=fill.side.value,
            quantity=shown(fill.quantity),
            price=Money.of(fill.price, quote),
            value=Money.of(fill.quantity * fill.price, quote),
            fee=Money.of(fill.fee, fill.fee_currency),
            fee_value=Money.maybe(fill.fee_value, quote),
            realized_pnl=Money.maybe(fill.realized_pnl, quote),
        )


class OrderTrailOut(BaseModel):
    id: int
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    type: str
    side: str
    status: str
    quantity: str
    filled_quantity: str
    average_price: Money | None
    stop_loss: Money | None
    take_profit: Money | None
    fee: Money
    error_code: str | None
    error_message: str | None
    created_at: str
    fills: list[FillOut]

    @classmethod
    def of(cls, order: Order, fills: list[Trade], quote: str) -> "OrderTrailOut":
        return cls(
            id=order.id,
            client_order_id=order.client_order_id,
            exchange_order_id=order.exchange_order_id,
            symbol=order.symbol,
            type=order.order_type.value,
            side=order.side.value,
            status=order.status.value,
            quantity=shown(order.quantity),
            filled_quantity=shown(order.filled_quantity),
            average_price=Money.maybe(order.average_fill_price, quote),
            stop_loss=Money.maybe(order.stop_loss, quote),
            take_profit=Money.maybe(order.take_profit, quote),
            fee=Money.of(order.fee, order.fee_currency),
            error_code=order.error_code,
            error_message=order.error_message,
            created_at=order.created_at.isoformat(),
            fills=[FillOut.of(fill, quote) for fill in fills],
        )


class DecisionTrailOut(BaseModel):
    id: int
    account_id: int
    account_name: str
    quote_currency: str
    approved: bool
    created_at: str
    reasons: list[ReasonOut]
    order_spec: dict[str, Any] | None
    orders: list[OrderTrailOut]

    @classmethod
    def of(cls, trail: DecisionTrail) -> "DecisionTrailOut":
        decision = trail.decision
        return cls(
            id=decision.id,
            account_id=decision.account_id,
            account_name=trail.account_name,
            quote_currency=trail.quote_currency,
            approved=decision.approved,
            created_at=decision.created_at.isoformat(),
            reasons=[
                ReasonOut(code=r.get("code", ""), message=r.get("message", ""), values=r.get("values") or {})
                for r in decision.reasons
            ],
            order_spec=decision.order_spec,
            orders=[OrderTrailOut.of(t.order, t.fills, trail.quote_currency) for t in trail.orders],
        )


class RunOut(BaseModel):
    id: int
    watch_id: int
    bar_time: str
    trigger: str
    status: str
    steps: list[dict[str, Any]]
    failed_step: str | None
    error_code: str | None
    error_message: str | None
    worker: str | None
    started_at: str | None
    finished_at: str | None

    @classmethod
    def of(cls, run: WatchRun) -> "RunOut":
        return cls(
            id=run.id,
            watch_id=run.watch_id,
            bar_time=run.bar_time.isoformat(),
            trigger=run.trigger,
            status=run.status.value,
            steps=run.steps,
            failed_step=run.failed_step,
            error_code=run.error_code,
            error_message=run.error_message,
            worker=run.worker,
            started_at=optional_time(run.started_at),
            finished_at=optional_time(run.finished_at),
        )


class ExplanationOut(BaseModel):
    analysis_id: int
    created_at: str
    watch_id: int | None
    account_id: int | None
    exchange: str
    symbol: str
    timeframe: str
    bar_time: str
    signal_source: str
    provider: str
    model: str | None
    status: str
    error_code: str | None
    error_message: str | None
    input: InputOut
    signal: dict[str, Any] | None
    raw_responses: list[str]
    cost: CostOut
    decisions: list[DecisionTrailOut]
    runs: list[RunOut]

    @classmethod
    def of(cls, explanation: Explanation) -> "ExplanationOut":
        analysis, entry = explanation.analysis, explanation.cache_entry
        return cls(
            analysis_id=analysis.id,
            created_at=analysis.created_at.isoformat(),
            watch_id=analysis.watch_id,
            account_id=analysis.account_id,
            exchange=analysis.exchange_id,
            symbol=analysis.symbol,
            timeframe=analysis.timeframe,
            bar_time=analysis.bar_time.isoformat(),
            signal_source=analysis.signal_source,
            provider=analysis.provider,
            model=analysis.model,
            status=analysis.status.value,
            error_code=analysis.error_code,
            error_message=analysis.error_message,
            input=InputOut(
                stored=explanation.request_stored,
                note=explanation.input_note,
                cache_key=analysis.cache_key,
                prompt_version=analysis.prompt_version,
                schema_version=analysis.schema_version,
                cache_entry=None
                if entry is None
                else CacheEntryOut(
                    key=entry.key,
                    provider=entry.provider,
                    model=entry.model,
                    prompt_version=entry.prompt_version,
                    schema_version=entry.schema_version,
                    arguments=entry.arguments,
                    problem=entry.problem,
                    cost=Money.of(entry.cost_usd, "USD"),
                    created_at=entry.created_at.isoformat(),
                ),
                reproduce=ReproductionOut.of(explanation.reproduction),
            ),
            signal=analysis.signal,
            raw_responses=explanation.raw_responses,
            cost=CostOut(
                cost=Money.of(analysis.cost_usd, "USD"),
                original_cost=Money.maybe(analysis.original_cost_usd, "USD"),
                cached=analysis.cached,
                latency_ms=analysis.latency_ms,
                usage=UsageOut(
                    input_tokens=analysis.input_tokens,
                    cache_read_tokens=analysis.cache_read_tokens,
                    cache_write_tokens=analysis.cache_write_tokens,
                    output_tokens=analysis.output_tokens,
                    reasoning_tokens=analysis.reasoning_tokens,
                ),
            ),
            decisions=[DecisionTrailOut.of(trail) for trail in explanation.decisions],
            runs=[RunOut.of(run) for run in explanation.runs],
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
