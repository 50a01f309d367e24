"""Issue 9, faults 10-12: unreported usage, the usage shapes DeepSeek and gateways send, several tool calls."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types import CompletionUsage

from ai.actions import Action
from ai.budget import BudgetCaps, BudgetScope
from ai.facts import MarketContext
from ai.outcome import AnalysisStatus
from ai.pricing import call_cost, estimate_tokens, worst_case_cost
from ai.prompts import SYSTEM_PROMPT
from ai.providers.base import Usage
from ai.providers.claude import ClaudeProvider
from ai.providers.deepseek import DeepSeekProvider, parse_usage
from ai.resilience import RetryPolicy
from ai.signal import Signal
from ai.signals import SignalQuery, SignalServices, propose_signal
from ai.sources import parse_chain
from tests.fakes.llm_servers import (
    FakeAnthropicServer,
    FakeDeepSeekServer,
    answer,
    anthropic_server_fixture,  # noqa: F401 - pytest fixture
    deepseek_server_fixture,  # noqa: F401 - pytest fixture
    deepseek_usage,
    several_calls,
)
from tests.fakes.memory import MemoryCache, MemoryLedger

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday: off-peak DeepSeek prices
CONTEXT_TEXT = "close 50000"
BUY = {
    "action": "BUY",
    "confidence": 72,
    "entry_price": 50010.5,
    "stop_loss": 49000,
    "take_profit": 52000,
    "horizon_bars": 12,
    "reasoning": "Trend up, RSI mid-range.",
    "key_factors": ["ema50>ema200", "rsi 58"],
}
HOLD = {
    "action": "HOLD",
    "confidence": 40,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 6,
    "reasoning": "No edge.",
    "key_factors": ["flat"],
}
CLAUDE_FORCED_TOOL_MODEL = "claude-haiku-4-5"


def run(chain: str, provider: Any, ledger: MemoryLedger | None = None):
    ctx = MarketContext(
        text=CONTEXT_TEXT,
        allowed_actions=(Action.BUY, Action.HOLD),
        last_close=Decimal("50000"),
        bar_time=NOW,
        price_factor=Decimal(1),
    )
    services = SignalServices(
        providers={provider.name: provider},
        cache=MemoryCache(),
        ledger=ledger or MemoryLedger(),
        retry=RetryPolicy(max_attempts=1),
        clock=lambda: NOW,
        sleep=lambda seconds: None,
    )
    query = SignalQuery(ctx, pd.DataFrame(), BudgetScope(user_id=1), BudgetCaps())
    return propose_signal(parse_chain(chain), query, services)


def reservation(provider: str, model: str) -> Decimal:
    tokens = estimate_tokens(SYSTEM_PROMPT, CONTEXT_TEXT, json.dumps(Signal.tool_schema()))
    return worst_case_cost(provider, model, tokens, 400)


# --- 10. unreported usage -------------------------------------------------------------------------------------


def test_an_answer_without_usage_is_settled_at_the_reservation_and_flagged(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(answer(BUY, without_usage=True))
    ledger = MemoryLedger()
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url), ledger)

    reserved = reservation("deepseek", "deepseek-flash")
    assert reserved > 0
    assert ledger.entries == {1: ("settled", reserved)}  # not $0: the caps keep holding
    assert outcome.cost_usd == reserved
    # A valid signal stays OK and executable; the flag is visible (recorded as the analysis' error_code).
    assert outcome.status is AnalysisStatus.OK and outcome.executable
    assert [r.code for r in outcome.reasons] == ["COST_UNREPORTED"]


def test_a_reported_usage_carries_no_flag(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(answer(BUY))
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url))
    assert outcome.status is AnalysisStatus.OK and outcome.reasons == []
    assert outcome.cost_usd < reservation("deepseek", "deepseek-flash")


def test_an_unreported_usage_flag_follows_the_failure_reasons(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(several_calls(BUY, HOLD), several_calls(BUY, HOLD))  # usage reported: only the failure codes
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url))
    assert [r.code for r in outcome.reasons] == ["MULTIPLE_TOOL_CALLS"]

    deepseek_server.queue(answer(["BUY"], without_usage=True), answer(["BUY"], without_usage=True))
    ledger = MemoryLedger()
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url), ledger)
    assert outcome.status is AnalysisStatus.INVALID
    assert [r.code for r in outcome.reasons] == ["NOT_AN_OBJECT", "COST_UNREPORTED", "COST_UNREPORTED"]
    reserved = reservation("deepseek", "deepseek-flash")
    # the repair request is longer, so its reservation (and settlement) is larger
    assert ledger.entries[1] == ("settled", reserved)
    assert ledger.entries[2][0] == "settled" and ledger.entries[2][1] > reserved
    assert outcome.cost_usd == ledger.entries[1][1] + ledger.entries[2][1]


def test_claude_without_usage_is_settled_at_the_reservation(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(answer(BUY, without_usage=True))
    ledger = MemoryLedger()
    outcome = run(f"claude:{CLAUDE_FORCED_TOOL_MODEL}", ClaudeProvider("sk-test", anthropic_server.url), ledger)
    reserved = reservation("claude", CLAUDE_FORCED_TOOL_MODEL)
    assert ledger.entries == {1: ("settled", reserved)}
    assert outcome.status is AnalysisStatus.OK and [r.code for r in outcome.reasons] == ["COST_UNREPORTED"]


# --- 11. usage shapes -----------------------------------------------------------------------------------------

ISSUE_EXAMPLE = {
    "prompt_tokens": 1200,
    "completion_tokens": 100,
    "total_tokens": 1300,
    "prompt_tokens_details": {"cached_tokens": 1000},
}


def test_the_issue_example_cached_tokens_only_in_the_openai_field():
    usage = parse_usage(ISSUE_EXAMPLE)
    assert usage == Usage(input_tokens=200, cache_read_tokens=1000, output_tokens=100)
    # off-peak deepseek-flash: 1,000 x $0.003 + 200 x $0.15 + 100 x $0.60 per 1M tokens
    assert call_cost("deepseek", "deepseek-flash", usage, NOW) == Decimal("0.000093")
    # what the bug billed: every prompt token uncached
    wrong = Usage(input_tokens=1200, output_tokens=100)
    assert call_cost("deepseek", "deepseek-flash", wrong, NOW) == Decimal("0.00024")


def test_the_issue_example_end_to_end(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(answer(BUY, usage=ISSUE_EXAMPLE))
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url))
    assert outcome.usage == Usage(input_tokens=200, cache_read_tokens=1000, output_tokens=100)
    assert outcome.cost_usd == Decimal("0.000093")


def test_deepseek_own_fields_win_over_the_openai_field():
    shape = {**deepseek_usage(hit=900, miss=300, completion=120, reasoning=30), "prompt_tokens_details": None}
    assert parse_usage(shape) == Usage(input_tokens=300, cache_read_tokens=900, output_tokens=120, reasoning_tokens=30)
    shape = {**deepseek_usage(hit=900, miss=300, completion=120), "prompt_tokens_details": {"cached_tokens": 5}}
    assert parse_usage(shape) == Usage(input_tokens=300, cache_read_tokens=900, output_tokens=120)


def test_no_cache_fields_bill_the_whole_prompt_uncached():
    assert parse_usage({"prompt_tokens": 500, "completion_tokens": 40}) == Usage(input_tokens=500, output_tokens=40)


@pytest.mark.parametrize("usage", [None, {}, {"total_tokens": 10}])
def test_no_usage_is_none(usage):
    assert parse_usage(usage) is None


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # cached > prompt: hits are capped at the prompt
        (
            {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 400}},
            Usage(input_tokens=0, cache_read_tokens=100, output_tokens=5),
        ),
        # hit + miss above prompt_tokens: the larger total bills
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 5,
                "prompt_cache_hit_tokens": 80,
                "prompt_cache_miss_tokens": 70,
            },
            Usage(input_tokens=70, cache_read_tokens=80, output_tokens=5),
        ),
        # hit + miss below prompt_tokens: the rest is uncached
        (
            {
                "prompt_tokens": 300,
                "completion_tokens": 5,
                "prompt_cache_hit_tokens": 80,
                "prompt_cache_miss_tokens": 20,
            },
            Usage(input_tokens=220, cache_read_tokens=80, output_tokens=5),
        ),
        # negative, fractional and text counts are no counts
        (
            {"prompt_tokens": 100, "completion_tokens": -5, "prompt_tokens_details": {"cached_tokens": -40}},
            Usage(input_tokens=100, output_tokens=0),
        ),
        ({"prompt_tokens": "100", "completion_tokens": 5.5}, Usage()),
        # reasoning is part of the output
        (
            {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 9}},
            Usage(input_tokens=10, output_tokens=5, reasoning_tokens=5),
        ),
    ],
)
def test_inconsistent_counts_are_normalised_towards_the_dearer_reading(shape, expected):
    assert parse_usage(shape) == expected


COUNT = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**9),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.booleans(),
)


def maybe(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), values.map(lambda value: {key: value}))


USAGE_SHAPES = st.builds(
    lambda *parts: {key: value for part in parts for key, value in part.items()},
    maybe("prompt_tokens", COUNT),
    maybe("completion_tokens", COUNT),
    maybe("total_tokens", COUNT),
    maybe("prompt_cache_hit_tokens", COUNT),
    maybe("prompt_cache_miss_tokens", COUNT),
    maybe("prompt_tokens_details", st.one_of(st.none(), maybe("cached_tokens", COUNT))),
    maybe("completion_tokens_details", st.one_of(st.none(), maybe("reasoning_tokens", COUNT))),
)


def valid(value: Any) -> int | None:
    """A count as the parser reads it: a non-negative integer, or a float with an integral value (1.0)."""
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@given(USAGE_SHAPES)
def test_parsed_usage_is_never_negative_and_always_consistent(shape):
    usage = parse_usage(shape)
    if usage is None:
        assert "prompt_tokens" not in shape and "completion_tokens" not in shape
        return
    counts = (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens)
    assert all(isinstance(count, int) and count >= 0 for count in counts)
    assert usage.cache_write_tokens == 0  # DeepSeek never bills cache writes
    assert usage.cache_read_tokens <= usage.total_input_tokens
    assert 0 <= usage.reasoning_tokens <= usage.output_tokens
    # never fewer prompt or output tokens billed than a valid report states
    prompt = valid(shape.get("prompt_tokens"))
    assert usage.total_input_tokens >= (prompt or 0)
    assert usage.output_tokens == (valid(shape.get("completion_tokens")) or 0)


@given(
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
)
def test_consistent_reports_are_read_exactly_in_every_shape(hit, miss, completion, reasoning):
    reasoning = min(reasoning, completion)
    expected = Usage(input_tokens=miss, cache_read_tokens=hit, output_tokens=completion, reasoning_tokens=reasoning)
    deepseek = deepseek_usage(hit=hit, miss=miss, completion=completion, reasoning=reasoning)
    gateway = {key: value for key, value in deepseek.items() if not key.startswith("prompt_cache_")}
    for shape in (deepseek, gateway):
        assert parse_usage(shape) == expected
        assert parse_usage(CompletionUsage.model_validate(shape)) == expected  # the SDK object, extras included


# --- 12. several tool calls -----------------------------------------------------------------------------------


def test_deepseek_buy_then_hold_is_repaired_and_the_repair_answer_is_used(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(several_calls(BUY, HOLD), answer(HOLD))
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url))
    assert len(deepseek_server.requests) == 2
    repair = deepseek_server.requests[1].body["messages"][-1]["content"]
    assert "MULTIPLE_TOOL_CALLS" in repair or "several differing tool calls" in repair
    assert outcome.status is AnalysisStatus.OK and outcome.signal.action is Action.HOLD


def test_deepseek_two_differing_calls_twice_is_a_hold(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(several_calls(BUY, HOLD), several_calls(HOLD, BUY))
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url))
    assert len(deepseek_server.requests) == 2
    assert outcome.status is AnalysisStatus.INVALID and not outcome.executable
    assert outcome.signal.action is Action.HOLD
    assert [r.code for r in outcome.reasons] == ["MULTIPLE_TOOL_CALLS"]


def test_deepseek_identical_duplicates_are_one_answer(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(several_calls(BUY, dict(reversed(BUY.items()))))
    outcome = run("deepseek", DeepSeekProvider("sk-test", deepseek_server.url))
    assert len(deepseek_server.requests) == 1
    assert outcome.status is AnalysisStatus.OK and outcome.signal.action is Action.BUY


def test_claude_buy_then_hold_is_repaired_then_a_hold(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(several_calls(BUY, HOLD), several_calls(BUY, HOLD))
    outcome = run(f"claude:{CLAUDE_FORCED_TOOL_MODEL}", ClaudeProvider("sk-test", anthropic_server.url))
    assert len(anthropic_server.requests) == 2
    assert outcome.status is AnalysisStatus.INVALID and not outcome.executable
    assert [r.code for r in outcome.reasons] == ["MULTIPLE_TOOL_CALLS"]


def test_claude_repair_with_one_call_is_used(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(several_calls(BUY, HOLD), answer(BUY))
    outcome = run(f"claude:{CLAUDE_FORCED_TOOL_MODEL}", ClaudeProvider("sk-test", anthropic_server.url))
    assert len(anthropic_server.requests) == 2
    assert outcome.status is AnalysisStatus.OK and outcome.signal.action is Action.BUY


def test_claude_identical_duplicates_are_one_answer(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(several_calls(BUY, BUY))
    outcome = run(f"claude:{CLAUDE_FORCED_TOOL_MODEL}", ClaudeProvider("sk-test", anthropic_server.url))
    assert len(anthropic_server.requests) == 1
    assert outcome.status is AnalysisStatus.OK and outcome.signal.action is Action.BUY
