"""The provider interface and the values that cross it."""

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SignalRequest:
    """One structured call. The static part (system prompt, schema) comes first so provider caches hit."""

    model: str
    system_prompt: str
    user_prompt: str
    schema: dict[str, Any]
    tool_name: str
    tool_description: str
    max_output_tokens: int
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Usage:
    """Tokens by how they are billed. `input_tokens` is the uncached input only (never double-counted)."""

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0  # includes reasoning tokens
    reasoning_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True)
class ProviderResponse:
    """What came back. `arguments` is None when the answer held no usable JSON object (prose, no tool call)."""

    provider: str
    model: str
    arguments: dict[str, Any] | None
    raw: str  # the response body as received, kept for the record
    usage: Usage
    latency_ms: int
    problem: str | None = None  # why `arguments` is None, e.g. "NO_TOOL_CALL", "MALFORMED_JSON"
    request_summary: dict[str, Any] = field(default_factory=dict)
    # False when the provider sent no usage object: `usage` is then zeros, and the call is billed at its reservation.
    usage_reported: bool = True


class ProviderError(Exception):
    """A call that produced no answer. `retryable` is true only for 429, 5xx, timeouts and connection errors."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after_seconds = retry_after_seconds  # the provider's own Retry-After, when it sent one


class SignalProvider(Protocol):
    name: str

    def complete(self, request: SignalRequest) -> ProviderResponse: ...
