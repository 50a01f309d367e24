"""DeepSeek through its OpenAI-compatible API: one forced tool call with thinking disabled."""

import time
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionNamedToolChoiceParam
from openai.types.shared_params import FunctionDefinition

from ai.models import ModelTable, load_models
from ai.providers.base import ProviderError, ProviderResponse, SignalRequest, Usage
from ai.providers.wire import parse_json_object, status_error

DEFAULT_BASE_URL = "https://api.deepseek.com"
# Strict tools are a beta feature, served under this path only.
STRICT_PATH = "/beta"


class DeepSeekProvider:
    name = "deepseek"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        http_client: httpx2.Client | None = None,
        models: ModelTable | None = None,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._http_client = http_client
        self._models = models or load_models()
        self._clients: dict[str, openai.OpenAI] = {}

    def complete(self, request: SignalRequest) -> ProviderResponse:
        info = self._models.info(self.name, request.model)
        strict = info.structured_output == "strict_tool"
        function: FunctionDefinition = {
            "name": request.tool_name,
            "description": request.tool_description,
            "parameters": request.schema,
        }
        if strict:
            function["strict"] = True
        tool_choice: ChatCompletionNamedToolChoiceParam = {"type": "function", "function": {"name": request.tool_name}}
        # Thinking is on by default, and a forced tool_choice is rejected (400) while it is.
        thinking = {"type": "disabled"}
        base_url = self._base_url + STRICT_PATH if strict else self._base_url
        summary = {
            "model": request.model,
            "base_url": base_url,
            "mode": info.structured_output,
            "tool_choice": tool_choice,
            "thinking": thinking,
            "strict": strict,
            "max_tokens": request.max_output_tokens,
            "timeout_seconds": request.timeout_seconds,
        }
        started = time.monotonic()
        try:
            raw_response = self._client(base_url).chat.completions.with_raw_response.create(
                model=request.model,
                messages=[
                    {"role": "system", "content": request.system_prompt},
                    {"role": "user", "content": request.user_prompt},
                ],
                tools=[{"type": "function", "function": function}],
                tool_choice=tool_choice,
                max_tokens=request.max_output_tokens,
                extra_body={"thinking": thinking},
                timeout=request.timeout_seconds,
            )
        except (openai.APIStatusError, openai.APIConnectionError) as error:
            raise self._provider_error(error) from None
        try:
            completion = raw_response.parse()
        except ValueError:
            raise ProviderError("BAD_RESPONSE", "DeepSeek answered with a non-JSON body", retryable=False) from None
        latency_ms = round((time.monotonic() - started) * 1000)
        arguments, problem = _tool_arguments(completion, request.tool_name)
        return ProviderResponse(
            provider=self.name,
            model=request.model,
            arguments=arguments,
            raw=raw_response.http_response.text,
            usage=_usage(completion.usage),
            latency_ms=latency_ms,
            problem=problem,
            request_summary=summary,
        )

    def _client(self, base_url: str) -> openai.OpenAI:
        if base_url not in self._clients:
            # Retries belong to our own layer, which also budgets and records every attempt.
            self._clients[base_url] = openai.OpenAI(
                api_key=self._api_key, base_url=base_url, max_retries=0, http_client=self._http_client
            )
        return self._clients[base_url]

    def _provider_error(self, error: openai.APIStatusError | openai.APIConnectionError) -> ProviderError:
        if isinstance(error, openai.APITimeoutError):
            return ProviderError("TIMEOUT", "DeepSeek did not answer in time", retryable=True)
        if isinstance(error, openai.APIConnectionError):
            return ProviderError("CONNECTION", "could not reach DeepSeek", retryable=True)
        return status_error(
            "DeepSeek",
            error.status_code,
            _api_message(error.body),
            self._api_key,
            error.response.headers.get("retry-after"),
        )


def _tool_arguments(completion: Any, tool_name: str) -> tuple[dict[str, Any] | None, str | None]:
    if not completion.choices:
        return None, "EMPTY_RESPONSE"
    message = completion.choices[0].message
    for call in message.tool_calls or []:
        if call.type == "function" and call.function.name == tool_name:
            return parse_json_object(call.function.arguments)
    if message.content and message.content.strip():
        return None, "NO_TOOL_CALL"
    return None, "EMPTY_RESPONSE"


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    # The SDK does not declare DeepSeek's cache fields; they arrive as extras.
    extra = usage.model_extra or {}
    hit = extra.get("prompt_cache_hit_tokens")
    miss = extra.get("prompt_cache_miss_tokens")
    details = usage.completion_tokens_details
    return Usage(
        input_tokens=int(miss) if miss is not None else usage.prompt_tokens - int(hit or 0),
        cache_read_tokens=int(hit or 0),
        output_tokens=usage.completion_tokens,
        reasoning_tokens=(details.reasoning_tokens or 0) if details else 0,
    )


def _api_message(body: object) -> str:
    # The SDK hands over the body's "error" object.
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return "no details"
