"""Reading what came over the wire: HTTP error statuses and JSON answers, the same for every provider."""

import json
from collections.abc import Sequence
from typing import Any

from ai.providers.base import ProviderError


def status_error(
    provider: str, status: int, api_message: str, api_key: str, retry_after: str | None = None
) -> ProviderError:
    """Classify an HTTP error status. Only 429, 5xx (incl. Anthropic's 529) and timeouts are worth retrying."""
    if status in (401, 403):
        # Providers echo (parts of) the rejected key in their message: keep none of it.
        return ProviderError("AUTH", f"{provider} rejected the API key (HTTP {status})", retryable=False, status=status)
    message = f"{provider} HTTP {status}: {api_message.replace(api_key, '[redacted]') if api_key else api_message}"
    if status == 429:
        return ProviderError(
            "RATE_LIMITED", message, retryable=True, status=status, retry_after_seconds=_seconds(retry_after)
        )
    if status == 529:
        return ProviderError("OVERLOADED", message, retryable=True, status=status)
    if status == 408:
        return ProviderError("TIMEOUT", message, retryable=True, status=status)
    if status >= 500:
        return ProviderError("SERVER_ERROR", message, retryable=True, status=status)
    if status == 404:
        return ProviderError("NOT_FOUND", message, retryable=False, status=status)
    return ProviderError("BAD_REQUEST", message, retryable=False, status=status)


def parse_json_object(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in `text`, or None and the problem code."""
    if not text or not text.strip():
        return None, "EMPTY_RESPONSE"
    try:
        value = json.loads(text)
    except ValueError:
        return None, "MALFORMED_JSON"
    if not isinstance(value, dict):
        return None, "NOT_AN_OBJECT"
    return value, None


def single_answer(
    calls: Sequence[tuple[dict[str, Any] | None, str | None]],
) -> tuple[dict[str, Any] | None, str | None]:
    """One answer from the parsed tool calls of a response: identical duplicates count as one; differing calls
    (e.g. a BUY and a HOLD) are no answer at all ("MULTIPLE_TOOL_CALLS"), never "the first one wins"."""
    distinct = {json.dumps(call, sort_keys=True, default=str): call for call in calls}
    if len(distinct) > 1:
        return None, "MULTIPLE_TOOL_CALLS"
    return calls[0]


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds; the HTTP-date form is rare from APIs and treated as absent."""
    try:
        return max(float(retry_after), 0.0) if retry_after is not None else None
    except ValueError:
        return None
