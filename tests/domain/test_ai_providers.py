"""The real openai/anthropic SDKs against fake servers on 127.0.0.1: what is sent, what is parsed, how errors map."""

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ai.models import default_model, load_models, model_info
from ai.providers.base import ProviderError, SignalRequest, Usage
from ai.providers.claude import ClaudeProvider, structured_output_schema
from ai.providers.deepseek import DeepSeekProvider
from ai.signal import Signal
from tests.fakes.llm_servers import (
    WRONG_TYPES_ARGUMENTS,
    FakeAnthropicServer,
    FakeDeepSeekServer,
    Scenario,
    answer,
    anthropic_server_fixture,  # noqa: F401 - pytest fixture
    anthropic_usage,
    bad_request,
    deepseek_server_fixture,  # noqa: F401 - pytest fixture
    deepseek_usage,
    empty,
    error,
    hang,
    malformed_arguments,
    not_json,
    overloaded,
    prose,
    rate_limited,
    refusal,
    server_error,
    unauthorized,
    unreachable_url,
    wrong_types,
)

API_KEY = "sk-test-5Ecr3t-0123456789abcdef"
TOOL_NAME = "trading_signal"
SYSTEM_PROMPT = "You are a cautious trading assistant. Static instructions come first."
USER_PROMPT = "BTC/USDT 1h: close 100, RSI 55. Propose one signal."
VALID_ARGUMENTS = {
    "action": "BUY",
    "confidence": 70,
    "entry_price": 100.0,
    "stop_loss": 95.0,
    "take_profit": 110.0,
    "horizon_bars": 12,
    "reasoning": "Trend up, momentum confirms.",
    "key_factors": ["sma_cross", "rsi"],
}
SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")


def signal_request(model: str, **overrides: Any) -> SignalRequest:
    fields: dict[str, Any] = {
        "model": model,
        "system_prompt": SYSTEM_PROMPT,
        "user_prompt": USER_PROMPT,
        "schema": Signal.tool_schema(),
        "tool_name": TOOL_NAME,
        "tool_description": "Record one trading signal.",
        "max_output_tokens": 400,
        "timeout_seconds": 5.0,
    }
    return SignalRequest(**{**fields, **overrides})


def schema_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in schema_keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in schema_keys(value)}
    return set()


def write_table(
    tmp_path: Path,
    provider: str = "deepseek",
    model: str = "deepseek-flash",
    mode: str = "forced_tool",
    thinking: str = "disable",
) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        f"""
as_of: "2026-11-21"
providers:
  {provider}:
    default: {model}
    models:
      {model}:
        structured_output: {mode}
        thinking: {thinking}
        accepts_temperature: true
        knowledge_cutoff: null
        min_cache_prefix_tokens: null
""",
        encoding="utf-8",
    )
    return path


# --- the capability table -------------------------------------------------------------------------------------


def test_defaults_are_the_cheap_current_models():
    assert default_model("deepseek") == "deepseek-flash"
    assert default_model("claude") == "claude-haiku-5-5"


def test_unknown_model_is_refused_with_the_known_ones_listed():
    with pytest.raises(ValueError, match="deepseek-chat") as raised:
        model_info("deepseek", "deepseek-chat")  # deprecated 2026-07-24
    assert "deepseek-flash" in str(raised.value) and "deepseek-v4-pro" in str(raised.value)


def test_unknown_provider_is_refused():
    with pytest.raises(ValueError, match="unknown provider 'openai'"):
        default_model("openai")


def test_capabilities_come_from_the_table():
    haiku = model_info("claude", "claude-haiku-5-5")
    assert (haiku.structured_output, haiku.accepts_temperature) == ("output_config", False)
    assert haiku.knowledge_cutoff == date(2026, 6, 30)  # "Jun 2026": the whole month may be known
    assert haiku.min_cache_prefix_tokens == 2048
    assert model_info("claude", "claude-haiku-4-5").structured_output == "forced_tool"
    assert model_info("claude", "claude-opus-5-5").thinking == "low_effort"
    flash = model_info("deepseek", "deepseek-flash")
    assert (flash.structured_output, flash.thinking, flash.knowledge_cutoff) == ("forced_tool", "disable", None)
    assert load_models().as_of == date(2026, 11, 21)


def test_a_forced_tool_on_an_always_thinking_model_is_rejected_at_load(tmp_path):
    with pytest.raises(ValueError, match="cannot force a tool"):
        load_models(write_table(tmp_path, "claude", "claude-haiku-4-5", "forced_tool", "low_effort"))


def test_deepseek_thinking_must_be_disabled_in_the_table(tmp_path):
    with pytest.raises(ValueError, match="unsupported thinking 'default_off'"):
        load_models(write_table(tmp_path, thinking="default_off"))


def test_a_mode_the_provider_lacks_is_rejected_at_load(tmp_path):
    with pytest.raises(ValueError, match="unknown structured_output 'output_config'"):
        load_models(write_table(tmp_path, mode="output_config"))


# --- DeepSeek: what is sent -----------------------------------------------------------------------------------


def test_deepseek_sends_one_forced_tool_with_thinking_disabled(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(answer(VALID_ARGUMENTS))
    response = DeepSeekProvider(API_KEY, deepseek_server.url).complete(signal_request("deepseek-flash"))

    [sent] = deepseek_server.requests
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.body
    assert body["model"] == "deepseek-flash"
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_PROMPT},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": TOOL_NAME,
                "description": "Record one trading signal.",
                "parameters": Signal.tool_schema(),
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": TOOL_NAME}}
    assert body["thinking"] == {"type": "disabled"}
    assert body["max_tokens"] == 400
    assert not set(SAMPLING_PARAMETERS) & set(body)

    assert response.provider == "deepseek" and response.model == "deepseek-flash"
    assert response.arguments == VALID_ARGUMENTS
    assert response.problem is None
    assert json.loads(response.raw)["choices"][0]["finish_reason"] == "tool_calls"
    assert response.request_summary["strict"] is False
    assert response.request_summary["thinking"] == {"type": "disabled"}
    assert API_KEY not in repr(response)


def test_deepseek_strict_mode_uses_the_beta_path_and_strict_function(deepseek_server: FakeDeepSeekServer, tmp_path):
    provider = DeepSeekProvider(
        API_KEY, deepseek_server.url + "/", models=load_models(write_table(tmp_path, mode="strict_tool"))
    )
    deepseek_server.queue(answer(VALID_ARGUMENTS))
    response = provider.complete(signal_request("deepseek-flash"))

    [sent] = deepseek_server.requests
    assert sent.path == "/beta/chat/completions"
    function = sent.body["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"] == Signal.tool_schema()
    assert sent.body["thinking"] == {"type": "disabled"}
    assert response.arguments == VALID_ARGUMENTS
    assert response.request_summary["strict"] is True
    assert response.request_summary["base_url"].endswith("/beta")


def test_deepseek_unknown_model_is_refused_before_any_request(deepseek_server: FakeDeepSeekServer):
    with pytest.raises(ValueError, match="deepseek-flash"):
        DeepSeekProvider(API_KEY, deepseek_server.url).complete(signal_request("deepseek-reasoner"))
    assert deepseek_server.requests == []


# --- DeepSeek: what is parsed ---------------------------------------------------------------------------------


def test_deepseek_usage_splits_cache_hits_from_misses(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(
        answer(VALID_ARGUMENTS, usage=deepseek_usage(hit=900, miss=300, completion=120, reasoning=30))
    )
    response = DeepSeekProvider(API_KEY, deepseek_server.url).complete(signal_request("deepseek-flash"))
    assert response.usage == Usage(
        input_tokens=300, cache_read_tokens=900, cache_write_tokens=0, output_tokens=120, reasoning_tokens=30
    )
    assert response.usage.total_input_tokens == 1200


def test_deepseek_usage_without_cache_fields_bills_the_whole_prompt_as_miss(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(
        answer(VALID_ARGUMENTS, usage={"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540})
    )
    response = DeepSeekProvider(API_KEY, deepseek_server.url).complete(signal_request("deepseek-flash"))
    assert response.usage == Usage(input_tokens=500, cache_read_tokens=0, output_tokens=40)


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [
        (malformed_arguments(), "MALFORMED_JSON"),
        (prose(), "NO_TOOL_CALL"),
        (empty(), "EMPTY_RESPONSE"),
        (refusal(), "EMPTY_RESPONSE"),
        (answer(["BUY", 70]), "NOT_AN_OBJECT"),
    ],
    ids=["malformed", "prose", "empty", "content-filter", "array"],
)
def test_deepseek_unusable_answers_carry_a_problem_code(
    deepseek_server: FakeDeepSeekServer, scenario: Scenario, problem: str
):
    deepseek_server.queue(scenario)
    response = DeepSeekProvider(API_KEY, deepseek_server.url).complete(signal_request("deepseek-flash"))
    assert (response.arguments, response.problem) == (None, problem)
    assert json.loads(response.raw)["id"] == "chatcmpl-fake"  # the body is kept for the record even so
    assert response.usage.output_tokens == 85


def test_deepseek_wrong_types_pass_through_for_semantic_validation(deepseek_server: FakeDeepSeekServer):
    deepseek_server.queue(wrong_types())
    response = DeepSeekProvider(API_KEY, deepseek_server.url).complete(signal_request("deepseek-flash"))
    assert (response.arguments, response.problem) == (WRONG_TYPES_ARGUMENTS, None)
    with pytest.raises(ValidationError):
        Signal.model_validate(response.arguments)


# --- Claude: what is sent -------------------------------------------------------------------------------------


def assert_common_claude_request(server: FakeAnthropicServer, model: str) -> dict[str, Any]:
    [sent] = server.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-version"] == "2026-10-21"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.body
    assert body["model"] == model
    assert body["max_tokens"] == 400
    assert body["system"] == [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}]
    assert body["messages"] == [{"role": "user", "content": USER_PROMPT}]
    assert not set(SAMPLING_PARAMETERS) & set(body)
    return body


def test_claude_default_model_uses_structured_outputs(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(answer(VALID_ARGUMENTS))
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request(default_model("claude")))

    body = assert_common_claude_request(anthropic_server, "claude-haiku-5-5")
    assert "tools" not in body and "tool_choice" not in body
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": structured_output_schema(Signal.tool_schema())}
    }
    assert body["thinking"] == {"type": "disabled"}
    assert response.arguments == VALID_ARGUMENTS
    assert response.problem is None
    assert json.loads(response.raw)["content"][0]["type"] == "text"
    assert response.request_summary["mode"] == "output_config"
    assert API_KEY not in repr(response)


def test_claude_always_thinking_models_ask_for_low_effort(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(answer(VALID_ARGUMENTS))
    ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request("claude-sonnet-5-5"))
    body = assert_common_claude_request(anthropic_server, "claude-sonnet-5-5")
    assert body["output_config"]["effort"] == "low"
    assert "thinking" not in body and "tool_choice" not in body


def test_claude_older_models_get_a_forced_tool_with_the_exact_schema(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(answer(VALID_ARGUMENTS))
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request("claude-haiku-4-5"))

    body = assert_common_claude_request(anthropic_server, "claude-haiku-4-5")
    assert body["tools"] == [
        {"name": TOOL_NAME, "description": "Record one trading signal.", "input_schema": Signal.tool_schema()}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert "output_config" not in body and "thinking" not in body
    assert response.arguments == VALID_ARGUMENTS
    assert response.request_summary["tool_choice"] == {"type": "tool", "name": TOOL_NAME}


@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning")
@pytest.mark.parametrize("model", load_models().known("claude"))
def test_claude_request_shape_follows_the_capability_table(anthropic_server: FakeAnthropicServer, model: str):
    anthropic_server.queue(answer(VALID_ARGUMENTS))
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request(model))
    body = anthropic_server.requests[0].body
    structured = model_info("claude", model).structured_output == "output_config"
    assert ("format" in body.get("output_config", {})) is structured
    assert ("tool_choice" in body) is not structured
    assert response.arguments == VALID_ARGUMENTS


def test_structured_output_schema_moves_unsupported_limits_into_descriptions():
    sent = structured_output_schema(Signal.tool_schema())
    assert not schema_keys(sent) & {"minimum", "maximum", "maxLength", "maxItems"}
    assert "{maximum: 100, minimum: 0}" in sent["properties"]["confidence"]["description"]
    assert sent["properties"]["entry_price"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert sent["required"] == Signal.tool_schema()["required"]
    assert sent["additionalProperties"] is False


def test_structured_output_schema_keeps_properties_named_like_keywords():
    schema = {"type": "object", "properties": {"minimum": {"type": "integer", "minimum": 1}}}
    assert structured_output_schema(schema)["properties"] == {
        "minimum": {"type": "integer", "description": "{minimum: 1}"}
    }


# --- Claude: what is parsed -----------------------------------------------------------------------------------


def test_claude_usage_keeps_cache_writes_and_reads_apart(anthropic_server: FakeAnthropicServer):
    usage = anthropic_usage(uncached=50, cache_write=2000, cache_read=0, output=120, thinking=40)
    anthropic_server.queue(answer(VALID_ARGUMENTS, usage=usage))
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request("claude-haiku-5-5"))
    assert response.usage == Usage(
        input_tokens=50, cache_read_tokens=0, cache_write_tokens=2000, output_tokens=120, reasoning_tokens=40
    )
    assert response.usage.total_input_tokens == 2050  # not 4100: input_tokens is the uncached part only


def test_claude_usage_reads_a_cache_hit(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(answer(VALID_ARGUMENTS))
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request("claude-haiku-4-5"))
    assert response.usage == Usage(input_tokens=180, cache_read_tokens=2100, cache_write_tokens=0, output_tokens=90)


@pytest.mark.parametrize(
    ("model", "scenario", "problem"),
    [
        ("claude-haiku-5-5", malformed_arguments(), "MALFORMED_JSON"),
        ("claude-haiku-5-5", prose(), "MALFORMED_JSON"),
        ("claude-haiku-5-5", empty(), "EMPTY_RESPONSE"),
        ("claude-haiku-5-5", answer([1, 2]), "NOT_AN_OBJECT"),
        ("claude-haiku-5-5", refusal(), "REFUSED"),
        ("claude-haiku-4-5", prose(), "NO_TOOL_CALL"),
        ("claude-haiku-4-5", empty(), "EMPTY_RESPONSE"),
        ("claude-haiku-4-5", malformed_arguments(), "NOT_AN_OBJECT"),
    ],
    ids=[
        "structured-malformed",
        "structured-prose",
        "structured-empty",
        "structured-array",
        "structured-refusal",
        "tool-prose",
        "tool-empty",
        "tool-string-input",
    ],
)
def test_claude_unusable_answers_carry_a_problem_code(
    anthropic_server: FakeAnthropicServer, model: str, scenario: Scenario, problem: str
):
    anthropic_server.queue(scenario)
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request(model))
    assert (response.arguments, response.problem) == (None, problem)
    assert json.loads(response.raw)["id"] == "msg_fake"
    assert response.usage.output_tokens == 90


def test_claude_wrong_types_pass_through_for_semantic_validation(anthropic_server: FakeAnthropicServer):
    anthropic_server.queue(wrong_types())
    response = ClaudeProvider(API_KEY, anthropic_server.url).complete(signal_request("claude-haiku-4-5"))
    assert (response.arguments, response.problem) == (WRONG_TYPES_ARGUMENTS, None)


# --- errors, for both providers -------------------------------------------------------------------------------

PROVIDERS = {
    "deepseek": (DeepSeekProvider, "deepseek-flash", "deepseek_server"),
    "claude": (ClaudeProvider, "claude-haiku-5-5", "anthropic_server"),
}
ERROR_CASES = [
    (rate_limited(retry_after=3), "RATE_LIMITED", True),
    (server_error(), "SERVER_ERROR", True),
    (error(503, "maintenance"), "SERVER_ERROR", True),
    (overloaded(), "OVERLOADED", True),
    (unauthorized(), "AUTH", False),
    (error(403, "forbidden"), "AUTH", False),
    (bad_request(), "BAD_REQUEST", False),
    (error(422, "unprocessable"), "BAD_REQUEST", False),
    (error(404, "model not found"), "NOT_FOUND", False),
]


@pytest.mark.parametrize("provider_name", PROVIDERS)
@pytest.mark.parametrize(
    ("scenario", "code", "retryable"), ERROR_CASES, ids=[case[1] + str(case[0].status) for case in ERROR_CASES]
)
def test_http_errors_are_classified_and_not_retried_by_the_sdk(
    request: pytest.FixtureRequest, provider_name: str, scenario: Scenario, code: str, retryable: bool
):
    provider_class, model, fixture = PROVIDERS[provider_name]
    server = request.getfixturevalue(fixture)
    server.queue(scenario, answer(VALID_ARGUMENTS))
    with pytest.raises(ProviderError) as raised:
        provider_class(API_KEY, server.url).complete(signal_request(model))
    assert (raised.value.code, raised.value.retryable, raised.value.status) == (code, retryable, scenario.status)
    assert raised.value.retry_after_seconds == (3.0 if code == "RATE_LIMITED" else None)
    assert len(server.requests) == 1  # SDK retries are off: our own layer decides


@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_a_hung_request_times_out_as_retryable(request: pytest.FixtureRequest, provider_name: str):
    provider_class, model, fixture = PROVIDERS[provider_name]
    server = request.getfixturevalue(fixture)
    server.queue(hang())
    try:
        with pytest.raises(ProviderError) as raised:
            provider_class(API_KEY, server.url).complete(signal_request(model, timeout_seconds=0.3))
    finally:
        server.release()
    assert (raised.value.code, raised.value.retryable) == ("TIMEOUT", True)
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_an_unreachable_server_is_a_retryable_connection_error(provider_name: str):
    provider_class, model, _ = PROVIDERS[provider_name]
    with pytest.raises(ProviderError) as raised:
        provider_class(API_KEY, unreachable_url()).complete(signal_request(model))
    assert (raised.value.code, raised.value.retryable) == ("CONNECTION", True)


@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_a_non_json_body_is_a_bad_response(request: pytest.FixtureRequest, provider_name: str):
    provider_class, model, fixture = PROVIDERS[provider_name]
    server = request.getfixturevalue(fixture)
    server.queue(not_json())
    with pytest.raises(ProviderError) as raised:
        provider_class(API_KEY, server.url).complete(signal_request(model))
    assert (raised.value.code, raised.value.retryable) == ("BAD_RESPONSE", False)


@pytest.mark.parametrize("provider_name", PROVIDERS)
@pytest.mark.parametrize("status", [401, 400])
def test_an_echoed_api_key_never_reaches_the_error(request: pytest.FixtureRequest, provider_name: str, status: int):
    provider_class, model, fixture = PROVIDERS[provider_name]
    server = request.getfixturevalue(fixture)
    server.queue(error(status, f"Incorrect API key provided: {API_KEY} (ends in {API_KEY[-4:]})"))
    with pytest.raises(ProviderError) as raised:
        provider_class(API_KEY, server.url).complete(signal_request(model))
    assert API_KEY not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
