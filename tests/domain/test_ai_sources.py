import pytest

from ai.providers.base import ProviderError
from ai.resilience import RetryPolicy, call_with_retries
from ai.sources import SourceSpec, SourceSpecError, parse_chain, parse_source


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("deepseek", SourceSpec("deepseek", provider="deepseek")),
        ("deepseek:deepseek-v4-pro", SourceSpec("deepseek", provider="deepseek", model="deepseek-v4-pro")),
        (" Claude ", SourceSpec("claude", provider="claude")),
        ("claude:claude-sonnet-5-5", SourceSpec("claude", provider="claude", model="claude-sonnet-5-5")),
        ("rules:sma_cross", SourceSpec("rules", strategy="sma_cross")),
        ("replay", SourceSpec("replay", provider="deepseek")),
        ("replay:claude:claude-haiku-5-5", SourceSpec("replay", provider="claude", model="claude-haiku-5-5")),
    ],
)
def test_specs(text, spec):
    assert parse_source(text) == spec
    assert parse_source(str(spec)) == spec


def test_chains():
    assert [str(s) for s in parse_chain("deepseek -> claude -> rules:sma_cross")] == [
        "deepseek",
        "claude",
        "rules:sma_cross",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpt4", "unknown signal source 'gpt4'"),
        ("rules", "rules needs a strategy"),
        ("replay:openai", "replay needs an LLM provider"),
        ("deepseek -> ", "empty signal source"),
        ("", "empty signal source"),
        ("replay -> rules:sma_cross", "cannot be part of a fallback chain"),
    ],
)
def test_bad_specs_name_the_problem(text, message):
    with pytest.raises(SourceSpecError, match=message):
        parse_chain(text)


def test_retry_waits_grow_with_jitter_and_stop_at_the_limit():
    waits: list[float] = []
    calls = []

    def always_busy():
        calls.append(1)
        raise ProviderError("RATE_LIMITED", "429", retryable=True)

    with pytest.raises(ProviderError):
        call_with_retries(
            always_busy,
            RetryPolicy(max_attempts=4, base_delay_seconds=1, max_delay_seconds=3),
            waits.append,
            lambda: 1.0,
        )
    assert len(calls) == 4
    assert waits == [1.0, 2.0, 3.0]  # exponential, capped; rng=1.0 shows the bound
    halves: list[float] = []
    with pytest.raises(ProviderError):
        call_with_retries(always_busy, RetryPolicy(max_attempts=2), halves.append, lambda: 0.5)
    assert halves == [0.5]


def test_retry_after_is_honoured_up_to_the_cap():
    waits: list[float] = []
    script = [ProviderError("RATE_LIMITED", "429", retryable=True, retry_after_seconds=5.0)] * 2

    def busy():
        if script:
            raise script.pop()
        return "answered"

    assert (
        call_with_retries(busy, RetryPolicy(max_attempts=3, max_delay_seconds=8), waits.append, lambda: 0.1)
        == "answered"
    )
    assert waits == [5.0, 5.0]
    script[:] = [ProviderError("RATE_LIMITED", "429", retryable=True, retry_after_seconds=600.0)]
    waits.clear()
    call_with_retries(busy, RetryPolicy(max_delay_seconds=8), waits.append, lambda: 0.1)
    assert waits == [8.0]
