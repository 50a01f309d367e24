"""DeepSeek through its OpenAI-compatible API: one forced tool call with thinking disabled."""

import time
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionNamedToolChoiceParam
from openai.types.shared_params import FunctionDefinition

from ai.models import ModelTable, load_models
from ai.providers.base import ProviderError, ProviderResponse, SignalRequest, Usage
from ai.providers.shared_http import SharedHttpClient
from ai.providers.wire import parse_json_object, single_answer, status_error

DEFAULT_BASE_URL = "https://api.deepseek.com"
# Every DeepSeekProvider in the process sends through one httpx client with the SDK's own defaults (timeouts, pool
# limits, redirects): building one per provider cost a run ~45 ms of CPU. The OpenAI clients, which hold the key,
# stay per provider.
SHARED_HTTP_CLIENT = SharedHttpClient(openai.DefaultHttpxClient)
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
        self._http_client = http_client if http_client is not None else SHARED_HTTP_CLIENT.get()
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
        usage = parse_usage(completion.usage)
        return ProviderResponse(
            provider=self.name,
            model=request.model,
            arguments=arguments,
            raw=raw_response.http_response.text,
            usage=usage or Usage(),
            latency_ms=latency_ms,
            problem=problem,
            request_summary=summary,
            usage_reported=usage is not None,
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
    calls = [
        parse_json_object(call.function.arguments)
        for call in message.tool_calls or []
        if call.type == "function" and call.function.name == tool_name
    ]
    if calls:
        return single_answer(calls)
    if message.content and message.content.strip():
        return None, "NO_TOOL_CALL"
    return None, "EMPTY_RESPONSE"


def parse_usage(usage: Any) -> Usage | None:
    """DeepSeek's (or an OpenAI-compatible gateway's) usage object as billed token counts; None when absent.

    `usage` is the SDK object or its dict. The cache split is read from DeepSeek's own
    `prompt_cache_hit_tokens` / `prompt_cache_miss_tokens` (SDK extras), else from the OpenAI-compatible
    `prompt_tokens_details.cached_tokens`, else every prompt token is uncached. Counts are normalised before they
    become money, always towards the dearer reading: a missing, negative or non-integer count is 0; the prompt is
    the larger of `prompt_tokens` and hit + miss; cache hits are at most the prompt (the rest bills as uncached);
    reasoning tokens are at most the output tokens (they are part of it). No usage, or one with neither a prompt nor
    a completion count, is None: the caller bills the call at its reservation.
    """
    fields = _as_dict(usage)
    if fields is None or ("prompt_tokens" not in fields and "completion_tokens" not in fields):
        return None
    prompt = _count(fields.get("prompt_tokens"))
    output = _count(fields.get("completion_tokens"))
    hit, miss = fields.get("prompt_cache_hit_tokens"), fields.get("prompt_cache_miss_tokens")
    if hit is not None or miss is not None:
        cached = _count(hit)
        prompt = max(prompt, cached + _count(miss))
    else:
        cached = _count((_as_dict(fields.get("prompt_tokens_details")) or {}).get("cached_tokens"))
    cached = min(cached, prompt)
    reasoning = _count((_as_dict(fields.get("completion_tokens_details")) or {}).get("reasoning_tokens"))
    return Usage(
        input_tokens=prompt - cached,
        cache_read_tokens=cached,
        output_tokens=output,
        reasoning_tokens=min(reasoning, output),
    )


def _as_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    # The SDK's pydantic models: model_dump keeps the undeclared DeepSeek fields (extras).
    dumped = value.model_dump() if hasattr(value, "model_dump") else None
    return dumped if isinstance(dumped, dict) else None


def _count(value: Any) -> int:
    """A token count: a non-negative integer, else 0 (bools, fractions, text and negatives are no counts)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    if isinstance(value, float) and not value.is_integer():
        return 0
    return max(int(value), 0)


def _api_message(body: object) -> str:
    # The SDK hands over the body's "error" object.
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return "no details"
