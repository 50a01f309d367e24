"""Anthropic Claude: Structured Outputs or a forced tool, whichever the model table says the model accepts."""

import time
from typing import Any

import anthropic
import httpx2

from ai.models import ModelTable, load_models
from ai.providers.base import ProviderError, ProviderResponse, SignalRequest, Usage
from ai.providers.shared_http import SharedHttpClient
from ai.providers.wire import parse_json_object, single_answer, status_error

DEFAULT_BASE_URL = "https://api.anthropic.com"
# Every ClaudeProvider in the process sends through one httpx client with the SDK's own defaults (timeouts, pool
# limits, TCP keep-alive, redirects): building one per provider cost a run ~40 ms of CPU. The Anthropic client,
# which holds the key, stays per provider.
SHARED_HTTP_CLIENT = SharedHttpClient(anthropic.DefaultHttpxClient)
# Structured Outputs reject these JSON Schema keywords (400); like the SDK's own helper, they move into the
# description so the model still reads them. The answer is validated against the full schema afterwards.
UNSUPPORTED_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "maxItems"}
)
SCHEMA_MAPS = frozenset({"properties", "$defs"})
SCHEMA_LISTS = frozenset({"anyOf", "allOf"})


class ClaudeProvider:
    name = "claude"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        http_client: httpx2.Client | None = None,
        models: ModelTable | None = None,
    ) -> None:
        self._api_key = api_key
        self._models = models or load_models()
        # Retries belong to our own layer, which also budgets and records every attempt.
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            http_client=http_client if http_client is not None else SHARED_HTTP_CLIENT.get(),
        )

    def complete(self, request: SignalRequest) -> ProviderResponse:
        info = self._models.info(self.name, request.model)
        structured = info.structured_output == "output_config"
        parameters: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_output_tokens,
            # The static prefix (tools, system prompt) is cached; the user prompt after it varies per call.
            "system": [{"type": "text", "text": request.system_prompt, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": request.user_prompt}],
        }
        output_config: dict[str, Any] = {}
        if structured:
            output_config["format"] = {"type": "json_schema", "schema": structured_output_schema(request.schema)}
        else:
            parameters["tools"] = [
                {"name": request.tool_name, "description": request.tool_description, "input_schema": request.schema}
            ]
            parameters["tool_choice"] = {"type": "tool", "name": request.tool_name}
        if info.thinking == "disable":
            parameters["thinking"] = {"type": "disabled"}
        elif info.thinking == "low_effort":
            output_config["effort"] = "low"
        if output_config:
            parameters["output_config"] = output_config
        summary = {
            "model": request.model,
            "base_url": str(self._client.base_url),
            "mode": info.structured_output,
            "tool_choice": parameters.get("tool_choice"),
            "output_format": "json_schema" if structured else None,
            "thinking": parameters.get("thinking"),
            "effort": output_config.get("effort"),
            "system_cache_control": "ephemeral",
            "max_tokens": request.max_output_tokens,
            "timeout_seconds": request.timeout_seconds,
        }
        started = time.monotonic()
        try:
            raw_response = self._client.messages.with_raw_response.create(**parameters, timeout=request.timeout_seconds)
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as error:
            raise self._provider_error(error) from None
        try:
            message = raw_response.parse()
        except ValueError:
            raise ProviderError("BAD_RESPONSE", "Claude answered with a non-JSON body", retryable=False) from None
        latency_ms = round((time.monotonic() - started) * 1000)
        arguments, problem = _answer(message, structured, request.tool_name)
        usage = getattr(message, "usage", None)
        return ProviderResponse(
            provider=self.name,
            model=request.model,
            arguments=arguments,
            raw=raw_response.http_response.text,
            usage=_usage(usage) if usage is not None else Usage(),
            latency_ms=latency_ms,
            problem=problem,
            request_summary=summary,
            usage_reported=usage is not None,
        )

    def _provider_error(self, error: anthropic.APIStatusError | anthropic.APIConnectionError) -> ProviderError:
        if isinstance(error, anthropic.APITimeoutError):
            return ProviderError("TIMEOUT", "Claude did not answer in time", retryable=True)
        if isinstance(error, anthropic.APIConnectionError):
            return ProviderError("CONNECTION", "could not reach the Anthropic API", retryable=True)
        return status_error(
            "Claude",
            error.status_code,
            error.api_message or "no details",
            self._api_key,
            error.response.headers.get("retry-after"),
        )


def structured_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` in the subset Structured Outputs accept: no numeric/length limits, nullable types as anyOf."""
    result: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for key, value in schema.items():
        if key in UNSUPPORTED_KEYWORDS or (key == "minItems" and value not in (0, 1)):
            moved[key] = value
        elif key == "type" and isinstance(value, list):
            result["anyOf"] = [{"type": kind} for kind in value]
        elif key in SCHEMA_MAPS:
            result[key] = {name: structured_output_schema(child) for name, child in value.items()}
        elif key in SCHEMA_LISTS:
            result[key] = [structured_output_schema(child) for child in value]
        elif key == "items":
            result[key] = structured_output_schema(value)
        else:
            result[key] = value
    if moved:
        limits = "{" + ", ".join(f"{key}: {value}" for key, value in moved.items()) + "}"
        result["description"] = f"{result['description']}\n\n{limits}" if "description" in result else limits
    return result


def _answer(message: Any, structured: bool, tool_name: str) -> tuple[dict[str, Any] | None, str | None]:
    if message.stop_reason == "refusal":
        return None, "REFUSED"
    if structured:
        return parse_json_object("".join(block.text for block in message.content if block.type == "text"))
    calls = [
        (block.input, None) if isinstance(block.input, dict) else (None, "NOT_AN_OBJECT")
        for block in message.content
        if block.type == "tool_use" and block.name == tool_name
    ]
    if calls:
        return single_answer(calls)
    if any(block.type == "text" and block.text.strip() for block in message.content):
        return None, "NO_TOOL_CALL"
    return None, "EMPTY_RESPONSE"


def _usage(usage: Any) -> Usage:
    details = usage.output_tokens_details
    return Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        cache_write_tokens=usage.cache_creation_input_tokens or 0,
        output_tokens=usage.output_tokens,
        reasoning_tokens=details.thinking_tokens if details else 0,
    )
