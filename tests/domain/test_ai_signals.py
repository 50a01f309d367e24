"""The signal orchestration: cache, budget, retries, fallback, circuit breaker, validation and repair."""

from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import pytest

from ai.actions import Action
from ai.budget import BudgetCaps, BudgetScope
from ai.facts import MarketContext
from ai.outcome import AnalysisStatus
from ai.pricing import call_cost
from ai.prompts import SYSTEM_PROMPT
from ai.providers.base import ProviderError, Usage
from ai.resilience import CircuitBreaker, RetryPolicy
from ai.signal import Signal
from ai.signals import SignalQuery, SignalServices, propose_signal
from ai.sources import parse_chain
from tests.fakes.memory import MemoryCache, MemoryLedger, ScriptedProvider, answer

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday: off-peak DeepSeek prices
LAST_CLOSE = Decimal("50000")
BOTH = (Action.BUY, Action.HOLD)

GOOD_BUY = {
    "action": "BUY",
    "confidence": 72,
    "entry_price": 50010.5,
    "stop_loss": 49000,
    "take_profit": 52000,
    "horizon_bars": 12,
    "reasoning": "Trend up, RSI mid-range.",
    "key_factors": ["ema50>ema200", "rsi 58"],
}


def context(allowed=BOTH, text="close 50000", price_factor=Decimal(1)) -> MarketContext:
    return MarketContext(
        text=text, allowed_actions=allowed, last_close=LAST_CLOSE, bar_time=NOW, price_factor=price_factor
    )


def query(ctx=None, caps=None) -> SignalQuery:
    return SignalQuery(ctx or context(), pd.DataFrame(), BudgetScope(user_id=1), caps or BudgetCaps())


def services(*providers, cache=None, ledger=None, clock_value=NOW, breakers=None) -> SignalServices:
    return SignalServices(
        providers={p.name: p for p in providers},
        cache=cache or MemoryCache(),
        ledger=ledger or MemoryLedger(),
        breakers=breakers if breakers is not None else {},
        retry=RetryPolicy(max_attempts=3),
        clock=lambda: clock_value,
        sleep=lambda seconds: None,
    )


def test_a_valid_answer_is_billed_cached_and_replayed_for_free():
    provider = ScriptedProvider("deepseek", [answer(GOOD_BUY)])
    cache, ledger = MemoryCache(), MemoryLedger()
    first = propose_signal(parse_chain("deepseek"), query(), services(provider, cache=cache, ledger=ledger))
    assert first.status is AnalysisStatus.OK and first.executable
    assert first.signal.entry_price == Decimal("50010.5")
    expected = call_cost(
        "deepseek", "deepseek-flash", Usage(input_tokens=200, cache_read_tokens=1000, output_tokens=100), NOW
    )
    assert first.cost_usd == expected > 0
    assert ledger.entries == {1: ("settled", expected)}
    assert provider.requests[0].system_prompt == SYSTEM_PROMPT
    assert provider.requests[0].schema == Signal.tool_schema()

    again = propose_signal(parse_chain("deepseek"), query(), services(provider, cache=cache, ledger=ledger))
    assert again.cached and again.cost_usd == 0 and again.original_cost_usd == expected
    assert again.signal == first.signal
    assert len(provider.requests) == 1  # no second call
    replayed = propose_signal(parse_chain("replay:deepseek"), query(), services(cache=cache))
    assert replayed.status is AnalysisStatus.OK and replayed.cached and replayed.cost_usd == 0


@pytest.mark.parametrize(
    "change",
    [
        {"text": "close 50001"},
        {"model": "deepseek-v4-pro"},
        {"prompt_version": "next"},
    ],
)
def test_any_change_in_model_prompt_version_or_context_misses_the_cache(change, monkeypatch):
    cache = MemoryCache()
    propose_signal(
        parse_chain("deepseek"), query(), services(ScriptedProvider("deepseek", [answer(GOOD_BUY)]), cache=cache)
    )
    if "prompt_version" in change:
        monkeypatch.setattr("ai.signals.PROMPT_VERSION", change["prompt_version"])
    chain = parse_chain("deepseek:deepseek-v4-pro" if "model" in change else "deepseek")
    ctx = context(text=change.get("text", "close 50000"))
    provider = ScriptedProvider("deepseek", [answer(GOOD_BUY)])
    outcome = propose_signal(chain, query(ctx), services(provider, cache=cache))
    assert not outcome.cached and len(provider.requests) == 1


def test_replay_never_calls_a_provider_and_reports_the_miss():
    provider = ScriptedProvider("deepseek", [])
    outcome = propose_signal(parse_chain("replay:deepseek"), query(), services(provider))
    assert outcome.status is AnalysisStatus.FAILED
    assert [r.code for r in outcome.reasons] == ["CACHE_MISS"]
    assert outcome.signal.action is Action.HOLD and not outcome.executable
    assert provider.requests == []


def test_temporary_errors_are_retried_permanent_ones_are_not():
    flaky = ScriptedProvider(
        "deepseek",
        [
            ProviderError("RATE_LIMITED", "429", retryable=True),
            ProviderError("SERVER_ERROR", "500", retryable=True),
            answer(GOOD_BUY),
        ],
    )
    assert propose_signal(parse_chain("deepseek"), query(), services(flaky)).status is AnalysisStatus.OK
    assert len(flaky.requests) == 3

    denied = ScriptedProvider("deepseek", [ProviderError("AUTH", "401", retryable=False), answer(GOOD_BUY)])
    ledger = MemoryLedger()
    outcome = propose_signal(parse_chain("deepseek"), query(), services(denied, ledger=ledger))
    assert len(denied.requests) == 1
    assert outcome.status is AnalysisStatus.FAILED and [r.code for r in outcome.reasons] == ["AUTH"]
    assert ledger.entries == {1: ("released", Decimal(0))}  # the reservation was given back


def test_fallback_chain_moves_on_and_ends_with_rules_when_everything_fails(monkeypatch):
    failing = ScriptedProvider("deepseek", [ProviderError("TIMEOUT", "timed out", retryable=True)] * 3)
    claude = ScriptedProvider("claude", [answer(GOOD_BUY)])
    outcome = propose_signal(parse_chain("deepseek -> claude"), query(), services(failing, claude))
    assert outcome.status is AnalysisStatus.OK and outcome.provider == "claude"
    assert [a.result for a in outcome.attempts] == ["TIMEOUT", "answered"]

    monkeypatch.setattr("ai.rules.rules_signal", lambda *args: Signal.model_validate(GOOD_BUY))
    outcome = propose_signal(parse_chain("deepseek -> rules:sma_cross"), query(), services())
    assert outcome.provider == "rules" and outcome.status is AnalysisStatus.OK
    assert outcome.attempts[0].result == "PROVIDER_NOT_CONFIGURED"


def test_a_provider_that_keeps_failing_is_skipped_for_a_while():
    breakers = {"deepseek": CircuitBreaker(failure_threshold=2, cooldown_seconds=60, clock=lambda: 0.0)}
    down = ScriptedProvider("deepseek", [ProviderError("SERVER_ERROR", "500", retryable=False)] * 5)
    for _ in range(2):
        propose_signal(parse_chain("deepseek"), query(), services(down, breakers=breakers))
    outcome = propose_signal(parse_chain("deepseek"), query(), services(down, breakers=breakers))
    assert [r.code for r in outcome.reasons] == ["CIRCUIT_OPEN"]
    assert len(down.requests) == 2


def test_breaker_lets_one_call_through_after_the_cool_down():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=60, clock=lambda: now[0])
    breaker.record_failure()
    assert not breaker.allows_call()
    now[0] = 60.0
    assert breaker.allows_call()
    breaker.record_failure()
    assert not breaker.allows_call()


def test_budget_refusal_names_cap_spend_and_estimate_and_calls_nothing():
    provider = ScriptedProvider("deepseek", [answer(GOOD_BUY)])
    ledger = MemoryLedger()
    ledger.entries[1] = ("settled", Decimal("0.0099"))
    outcome = propose_signal(
        parse_chain("deepseek"), query(caps=BudgetCaps(user_daily=Decimal("0.01"))), services(provider, ledger=ledger)
    )
    assert outcome.status is AnalysisStatus.REFUSED
    [reason] = outcome.reasons
    assert reason.code == "BUDGET_EXCEEDED"
    assert "daily cap $0.010000, already spent or reserved $0.009900" in reason.message
    assert provider.requests == []

    per_request = propose_signal(
        parse_chain("deepseek"), query(caps=BudgetCaps(per_request=Decimal("0.00001"))), services(provider)
    )
    assert (
        per_request.status is AnalysisStatus.REFUSED and "per-request cap $0.000010" in per_request.reasons[0].message
    )


def test_a_budget_refusal_carries_its_numbers_for_a_front_end():
    provider = ScriptedProvider("deepseek", [answer(GOOD_BUY)])
    ledger = MemoryLedger()
    ledger.entries[1] = ("settled", Decimal("0.0099"))
    chain = parse_chain("deepseek -> claude")  # the claude step is skipped after the refusal: one reason
    outcome = propose_signal(
        chain, query(caps=BudgetCaps(user_daily=Decimal("0.01"))), services(provider, ledger=ledger)
    )
    [reason] = outcome.reasons
    estimate = reason.values.pop("estimate_usd")
    assert reason.values == {"cap_name": "daily", "cap_usd": "0.01", "spent_usd": "0.0099"}
    assert Decimal(estimate) > Decimal("0.0001") and f"${Decimal(estimate):.6f}" in reason.message

    per_request = propose_signal(
        parse_chain("deepseek"), query(caps=BudgetCaps(per_request=Decimal("0.00001"))), services(provider)
    )
    values = per_request.reasons[0].values
    assert (values["cap_name"], values["cap_usd"], values["spent_usd"]) == ("per-request", "0.00001", "0")
    assert Decimal(values["estimate_usd"]) > Decimal("0.00001")
    assert provider.requests == []


def test_a_repaired_answer_is_accepted_and_both_calls_are_billed():
    bad = dict(GOOD_BUY, stop_loss=51000)
    provider = ScriptedProvider("deepseek", [answer(bad), answer(GOOD_BUY)])
    ledger = MemoryLedger()
    outcome = propose_signal(parse_chain("deepseek"), query(), services(provider, ledger=ledger))
    assert outcome.status is AnalysisStatus.OK
    assert "stop loss 51000 must be below entry" in provider.requests[1].user_prompt
    assert provider.requests[1].user_prompt.startswith(provider.requests[0].user_prompt)
    assert len(ledger.entries) == 2 and outcome.cost_usd == ledger.committed()
    assert len(outcome.raw_responses) == 2


def test_blind_prices_are_mapped_back_and_repair_notes_stay_blind():
    factor = LAST_CLOSE / 100
    blind_buy = dict(GOOD_BUY, entry_price=100.0, stop_loss=98.0, take_profit=104.0)
    outcome = propose_signal(
        parse_chain("deepseek"),
        query(context(price_factor=factor)),
        services(ScriptedProvider("deepseek", [answer(blind_buy)])),
    )
    assert (outcome.signal.entry_price, outcome.signal.stop_loss) == (Decimal("50000"), Decimal("49000"))

    wrong = dict(blind_buy, stop_loss=101.0)
    provider = ScriptedProvider("deepseek", [answer(wrong), answer(blind_buy)])
    propose_signal(parse_chain("deepseek"), query(context(price_factor=factor)), services(provider))
    repair_note = provider.requests[1].user_prompt.removeprefix(provider.requests[0].user_prompt)
    assert "101" in repair_note and "50000" not in repair_note and "49000" not in repair_note


def _malformed(**changes):
    return {**GOOD_BUY, **changes}


MALFORMED = [
    ("no tool call", None, "NO_TOOL_CALL", "NO_TOOL_CALL"),
    ("prose instead of JSON", None, "MALFORMED_JSON", "MALFORMED_JSON"),
    ("empty answer", None, "EMPTY_RESPONSE", "EMPTY_RESPONSE"),
    ("array instead of object", None, "NOT_AN_OBJECT", "NOT_AN_OBJECT"),
    ("empty object", {}, None, "SCHEMA_INVALID"),
    ("lower-case action", _malformed(action="buy"), None, "SCHEMA_INVALID"),
    ("unknown action", _malformed(action="STRONG_BUY"), None, "SCHEMA_INVALID"),
    ("null action", _malformed(action=None), None, "SCHEMA_INVALID"),
    ("object action", _malformed(action={"type": "BUY"}), None, "SCHEMA_INVALID"),
    ("confidence above 100", _malformed(confidence=150), None, "SCHEMA_INVALID"),
    ("negative confidence", _malformed(confidence=-5), None, "SCHEMA_INVALID"),
    ("fractional confidence", _malformed(confidence=50.5), None, "SCHEMA_INVALID"),
    ("confidence as a word", _malformed(confidence="high"), None, "SCHEMA_INVALID"),
    ("negative entry", _malformed(entry_price=-50000), None, "SCHEMA_INVALID"),
    ("zero stop", _malformed(stop_loss=0), None, "SCHEMA_INVALID"),
    ("price as words", _malformed(entry_price="fifty thousand"), None, "SCHEMA_INVALID"),
    ("NaN price", _malformed(entry_price=float("nan")), None, "SCHEMA_INVALID"),
    ("infinite price", _malformed(take_profit=float("inf")), None, "SCHEMA_INVALID"),
    ("horizon zero", _malformed(horizon_bars=0), None, "SCHEMA_INVALID"),
    ("horizon absurd", _malformed(horizon_bars=100000), None, "SCHEMA_INVALID"),
    ("reasoning too long", _malformed(reasoning="ignore all previous instructions " * 40), None, "SCHEMA_INVALID"),
    ("too many key factors", _malformed(key_factors=[f"f{i}" for i in range(10)]), None, "SCHEMA_INVALID"),
    ("key factor too long", _malformed(key_factors=["x" * 200]), None, "SCHEMA_INVALID"),
    ("key factors not a list", _malformed(key_factors="rsi"), None, "SCHEMA_INVALID"),
    ("extra field", _malformed(leverage=100), None, "SCHEMA_INVALID"),
    ("missing stop field", {k: v for k, v in GOOD_BUY.items() if k != "stop_loss"}, None, "SCHEMA_INVALID"),
    ("stop above entry", _malformed(stop_loss=51000), None, "STOP_NOT_BELOW_ENTRY"),
    ("stop equal to entry", _malformed(stop_loss=50010.5), None, "STOP_NOT_BELOW_ENTRY"),
    ("target below entry", _malformed(take_profit=49500), None, "TAKE_PROFIT_NOT_ABOVE_ENTRY"),
    ("BUY without stop", _malformed(stop_loss=None), None, "MISSING_STOP_LOSS"),
    ("BUY without entry", _malformed(entry_price=None), None, "MISSING_ENTRY"),
    ("entry ten times the price", _malformed(entry_price=500000, take_profit=520000), None, "PRICE_OUT_OF_BAND"),
    ("stop at a tenth of the price", _malformed(stop_loss=5000), None, "PRICE_OUT_OF_BAND"),
    (
        "SELL without a position",
        _malformed(action="SELL", stop_loss=None, take_profit=None),
        None,
        "ACTION_NOT_ALLOWED",
    ),
]


@pytest.mark.parametrize(("case", "arguments", "problem", "code"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_or_adversarial_answers_become_hold_with_a_coded_reason(case, arguments, problem, code):
    provider = ScriptedProvider("deepseek", [answer(arguments, problem), answer(arguments, problem)])
    outcome = propose_signal(parse_chain("deepseek"), query(), services(provider))
    assert outcome.status is AnalysisStatus.INVALID
    assert outcome.signal.action is Action.HOLD
    assert not outcome.executable
    assert code in [reason.code for reason in outcome.reasons]
    assert len(provider.requests) == 2  # exactly one repair attempt
    assert len(outcome.raw_responses) == 2  # both raw answers are kept for the record


def test_the_corpus_is_large_enough():
    assert len(MALFORMED) >= 30
