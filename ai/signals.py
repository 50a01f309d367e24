"""One signal per request: cache -> budget reserve -> provider (with retries) -> validation -> budget settle.

Every signal source goes through `propose_signal`, live and in backtests alike. Whatever goes wrong, the
answer is a HOLD with coded reasons: nothing downstream executes on a malformed or unpaid-for answer.
"""

import json
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ai import rules
from ai.budget import BudgetCaps, BudgetExceededError, BudgetLedger, BudgetScope, check_request_cap
from ai.cache import CachedResponse, ResponseCache, cache_key
from ai.facts import MarketContext
from ai.models import default_model
from ai.outcome import AnalysisStatus, Attempt, SignalOutcome, hold
from ai.pricing import call_cost, estimate_tokens, worst_case_cost
from ai.prompts import PROMPT_VERSION, SYSTEM_PROMPT, TOOL_DESCRIPTION, TOOL_NAME, repair_prompt
from ai.providers.base import ProviderError, ProviderResponse, SignalProvider, SignalRequest, Usage
from ai.resilience import CircuitBreaker, RetryPolicy, call_with_retries
from ai.signal import SCHEMA_VERSION, Signal, Violation, check_signal
from ai.sources import SourceSpec

log = logging.getLogger(__name__)
DEFAULT_MAX_OUTPUT_TOKENS = 400
PROVIDER_KEY_VARIABLES = {"deepseek": "DEEPSEEK_API_KEY", "claude": "ANTHROPIC_API_KEY"}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SignalServices:
    """What the orchestration needs from the outside; `app/` wires database-backed implementations."""

    providers: Mapping[str, SignalProvider]  # only the configured ones (an API key is known)
    cache: ResponseCache
    ledger: BudgetLedger
    breakers: MutableMapping[str, CircuitBreaker] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class SignalQuery:
    context: MarketContext
    candles: pd.DataFrame  # what rules strategies decide on
    scope: BudgetScope
    caps: BudgetCaps = field(default_factory=BudgetCaps)
    rule_params: Mapping[str, Any] = field(default_factory=dict)
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    timeout_seconds: float = 30.0


class _Unanswered(Exception):
    """This source gave no answer; the chain moves on to the next one."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def propose_signal(chain: Sequence[SourceSpec], query: SignalQuery, services: SignalServices) -> SignalOutcome:
    attempts: list[Attempt] = []
    failures: list[Violation] = []
    budget_refusal: BudgetExceededError | None = None
    for spec in chain:
        if spec.kind == "rules":
            return _rules_outcome(spec, query, attempts)
        if budget_refusal is not None:
            attempts.append(Attempt(str(spec), "SKIPPED_BUDGET_EXCEEDED"))
            continue
        try:
            return _LlmExchange(spec, query, services, attempts).run()
        except BudgetExceededError as refusal:
            budget_refusal = refusal
            attempts.append(Attempt(str(spec), refusal.code, detail=str(refusal)))
        except _Unanswered as unanswered:
            failures.append(Violation(unanswered.code, f"{spec}: {unanswered}"))
            attempts.append(Attempt(str(spec), unanswered.code, detail=str(unanswered)))
    last = chain[-1]
    if budget_refusal is not None:
        # The numbers behind the refusal travel with it, so a front end can answer 402 with them.
        reasons = [Violation(budget_refusal.code, str(budget_refusal), values=budget_refusal.values())]
        return _empty_outcome(last, AnalysisStatus.REFUSED, reasons, attempts)
    return _empty_outcome(last, AnalysisStatus.FAILED, failures, attempts)


def _empty_outcome(
    spec: SourceSpec, status: AnalysisStatus, reasons: list[Violation], attempts: list[Attempt]
) -> SignalOutcome:
    codes = ", ".join(dict.fromkeys(reason.code for reason in reasons)) or status.value
    return SignalOutcome(
        signal=hold(f"No signal: {codes}"),
        status=status,
        source=str(spec),
        provider=spec.kind,
        reasons=reasons,
        attempts=attempts,
    )


def _rules_outcome(spec: SourceSpec, query: SignalQuery, attempts: list[Attempt]) -> SignalOutcome:
    # parse_source gives every rules spec a strategy; a hand-built SourceSpec("rules") without one keeps failing
    # inside rules_signal as an unknown strategy (ValueError), as it always has.
    signal = rules.rules_signal(
        spec.strategy,  # type: ignore[arg-type]
        dict(query.rule_params),
        query.candles,
        query.context.allowed_actions,
    )
    attempts.append(Attempt(str(spec), "ok"))
    return SignalOutcome(
        signal=signal,
        status=AnalysisStatus.OK,
        source=str(spec),
        provider="rules",
        model=spec.strategy,
        attempts=attempts,
    )


class _LlmExchange:
    """One LLM source: the first request, at most one repair, with every call cached, budgeted and recorded."""

    def __init__(self, spec: SourceSpec, query: SignalQuery, services: SignalServices, attempts: list[Attempt]) -> None:
        self.spec, self.query, self.services, self.attempts = spec, query, services, attempts
        self.provider_name = spec.provider or spec.kind
        self.model = spec.model or default_model(self.provider_name)
        self.usage = Usage()
        self.cost = Decimal(0)
        self.original_cost = Decimal(0)
        self.latency_ms = 0
        self.cache_hits = 0
        self.calls = 0
        self.raw: list[str] = []
        self.reservations: list[int] = []
        self.first_key: str | None = None
        self.notes: list[Violation] = []  # visible on the outcome without failing it, e.g. COST_UNREPORTED

    def run(self) -> SignalOutcome:
        context = self.query.context
        request = SignalRequest(
            model=self.model,
            system_prompt=SYSTEM_PROMPT,
            user_prompt=context.text,
            schema=Signal.tool_schema(),
            tool_name=TOOL_NAME,
            tool_description=TOOL_DESCRIPTION,
            max_output_tokens=self.query.max_output_tokens,
            timeout_seconds=self.query.timeout_seconds,
        )
        signal, violations = self._validated(self._obtain(request))
        if signal is None or violations:
            problems = "; ".join(v.message for v in violations)
            signal, violations = self._validated(
                self._obtain(replace(request, user_prompt=repair_prompt(request.user_prompt, problems)))
            )
        if signal is None or violations:
            return self._outcome(
                hold("No valid signal: " + ", ".join(v.code for v in violations)), AnalysisStatus.INVALID, violations
            )
        return self._outcome(signal.scaled(context.price_factor), AnalysisStatus.OK, [])

    def _obtain(self, request: SignalRequest) -> ProviderResponse:
        key = cache_key(self.provider_name, PROMPT_VERSION, SCHEMA_VERSION, request)
        self.first_key = self.first_key or key
        hit = self.services.cache.get(key)
        if hit is not None:
            return self._from_cache(hit)
        if self.spec.kind == "replay":
            raise _Unanswered("CACHE_MISS", "no cached answer for this request; replay never calls a provider")
        return self._call(key, request)

    def _from_cache(self, hit: CachedResponse) -> ProviderResponse:
        self.cache_hits += 1
        self.usage += hit.usage
        self.original_cost += hit.cost_usd
        self.raw.append(hit.raw)
        self.attempts.append(Attempt(str(self.spec), "cache_hit"))
        return ProviderResponse(hit.provider, hit.model, hit.arguments, hit.raw, hit.usage, latency_ms=0)

    def _call(self, key: str, request: SignalRequest) -> ProviderResponse:
        provider = self.services.providers.get(self.provider_name)
        if provider is None:
            variable = PROVIDER_KEY_VARIABLES[self.provider_name]
            raise _Unanswered(
                "PROVIDER_NOT_CONFIGURED", f"no API key: set {variable} or store your own {self.provider_name} key"
            )
        breaker = self.services.breakers.setdefault(self.provider_name, CircuitBreaker())
        if not breaker.allows_call():
            raise _Unanswered("CIRCUIT_OPEN", "skipped after repeated failures; retried after a cool-down")

        input_estimate = estimate_tokens(request.system_prompt, request.user_prompt, json.dumps(request.schema))
        estimate = worst_case_cost(self.provider_name, self.model, input_estimate, request.max_output_tokens)
        check_request_cap(self.query.caps, estimate)
        ledger, clock = self.services.ledger, self.services.clock
        started = clock()
        reservation = ledger.reserve(
            self.query.scope, self.query.caps, estimate, self.provider_name, self.model, started
        )
        self.reservations.append(reservation)
        try:
            response = call_with_retries(lambda: provider.complete(request), self.services.retry, self.services.sleep)
        except ProviderError as error:
            ledger.release(reservation, clock())
            breaker.record_failure()
            raise _Unanswered(error.code, str(error)) from None
        breaker.record_success()
        if response.usage_reported:
            cost = call_cost(self.provider_name, self.model, response.usage, started)
        else:
            # No usage object: $0 would let the daily and monthly caps stop holding. Bill the reserved worst case.
            cost = estimate
            self.notes.append(
                Violation(
                    "COST_UNREPORTED",
                    f"{self.provider_name} reported no token usage: billed at the reservation (${estimate})",
                )
            )
        if cost > estimate:
            log.warning("call cost above its reservation", extra={"cost_usd": str(cost), "reserved_usd": str(estimate)})
        ledger.settle(reservation, cost, clock())
        self.services.cache.put(
            CachedResponse(
                key=key,
                provider=self.provider_name,
                model=self.model,
                prompt_version=PROMPT_VERSION,
                schema_version=SCHEMA_VERSION,
                arguments=response.arguments,
                problem=response.problem,
                raw=response.raw,
                usage=response.usage,
                cost_usd=cost,
                created_at=started,
            )
        )
        self.calls += 1
        self.usage += response.usage
        self.cost += cost
        self.latency_ms += response.latency_ms
        self.raw.append(response.raw)
        self.attempts.append(Attempt(str(self.spec), "answered", cost, response.latency_ms))
        return response

    def _validated(self, response: ProviderResponse) -> tuple[Signal | None, list[Violation]]:
        """Parse and check in the model's own price units (blind prices stay blind in a repair note)."""
        if response.arguments is None:
            code = response.problem or "NO_ANSWER"
            if code == "MULTIPLE_TOOL_CALLS":
                message = "several differing tool calls in one answer: call the tool exactly once"
                return None, [Violation(code, message)]
            return None, [Violation(code, f"no usable JSON object in the answer ({code})")]
        try:
            signal = Signal.model_validate(response.arguments)
        except ValidationError as error:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in error.errors()[:5]
            )
            return None, [Violation("SCHEMA_INVALID", details[:400])]
        context = self.query.context
        return signal, check_signal(signal, context.last_close / context.price_factor, context.allowed_actions)

    def _outcome(self, signal: Signal, status: AnalysisStatus, reasons: list[Violation]) -> SignalOutcome:
        cached = self.calls == 0 and self.cache_hits > 0
        return SignalOutcome(
            signal=signal,
            status=status,
            source=str(self.spec),
            provider=self.provider_name,
            model=self.model,
            prompt_version=PROMPT_VERSION,
            schema_version=SCHEMA_VERSION,
            cache_key=self.first_key,
            reasons=reasons + self.notes,
            usage=self.usage,
            cost_usd=self.cost,
            original_cost_usd=self.original_cost if self.cache_hits else None,
            latency_ms=self.latency_ms,
            cached=cached,
            raw_responses=self.raw,
            attempts=self.attempts,
            ledger_entry_ids=self.reservations,
        )
