"""What a signal request produced, with everything needed to record and bill it."""

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from ai.actions import Action
from ai.providers.base import Usage
from ai.signal import Signal, Violation


class AnalysisStatus(StrEnum):
    OK = "ok"  # a validated signal
    INVALID = "invalid"  # an answer came back but failed validation (after one repair): HOLD, nothing executes
    FAILED = "failed"  # no answer (provider errors, not configured, cache miss in replay): HOLD
    REFUSED = "refused"  # not attempted: the budget did not allow it: HOLD


@dataclass(frozen=True)
class Attempt:
    """One step of the fallback chain: a call, a cache hit, or a skip, and what it cost."""

    source: str
    result: str  # "ok", "invalid", "cache_hit", or an error / skip code
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    detail: str = ""


def hold(reason: str) -> Signal:
    """The safe answer whenever no valid signal exists."""
    return Signal(
        action=Action.HOLD,
        confidence=0,
        entry_price=None,
        stop_loss=None,
        take_profit=None,
        horizon_bars=1,
        reasoning=reason[:200],
        key_factors=[],
    )


@dataclass
class SignalOutcome:
    signal: Signal
    status: AnalysisStatus
    source: str  # the spec that produced the signal (or was tried last)
    provider: str  # deepseek | claude | rules | replay
    model: str | None = None
    prompt_version: str | None = None
    schema_version: str | None = None
    cache_key: str | None = None
    reasons: list[Violation] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    original_cost_usd: Decimal | None = None  # for cache hits: what the original call cost
    latency_ms: int = 0
    cached: bool = False
    raw_responses: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    ledger_entry_ids: list[int] = field(default_factory=list)  # the budget reservations this request made

    @property
    def executable(self) -> bool:
        """Only a validated, non-HOLD signal may go on to the risk manager."""
        return self.status is AnalysisStatus.OK and self.signal.action is not Action.HOLD
