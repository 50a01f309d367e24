"""The response cache: identical requests are answered from storage at $0, so backtest re-runs cost nothing."""

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from ai.providers.base import SignalRequest, Usage


@dataclass(frozen=True)
class CachedResponse:
    key: str
    provider: str
    model: str
    prompt_version: str
    schema_version: str
    arguments: dict[str, Any] | None  # None when the answer held no JSON object: replayed as such
    problem: str | None
    raw: str
    usage: Usage  # of the original, paid call
    cost_usd: Decimal  # what the original call cost
    created_at: datetime


def cache_key(provider: str, prompt_version: str, schema_version: str, request: SignalRequest) -> str:
    """sha256 over everything that shapes the answer: provider, model, versions, texts, schema, sampling."""
    material = {
        "provider": provider,
        "model": request.model,
        "prompt_version": prompt_version,
        "schema_version": schema_version,
        "system": request.system_prompt,
        "user": request.user_prompt,
        "schema": request.schema,
        "tool": request.tool_name,
        "sampling": {"max_output_tokens": request.max_output_tokens},
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache(Protocol):
    def get(self, key: str) -> CachedResponse | None: ...

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """Bulk lookup, so a backtest loads what it needs in one query rather than one per bar."""
        ...

    def put(self, entry: CachedResponse) -> None: ...


# The exchange format of `cache export` / `cache import`: one JSON object per cached response.
_KEY = re.compile(r"^[0-9a-f]{64}$")
_USAGE_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


class CacheEntryError(ValueError):
    """A JSON object that is not a cached response; the message says which field is wrong."""


def entry_to_json(entry: CachedResponse) -> dict[str, Any]:
    """A cached response as one JSON-ready object (amounts as exact decimal strings, times ISO-8601)."""
    return {
        "key": entry.key,
        "provider": entry.provider,
        "model": entry.model,
        "prompt_version": entry.prompt_version,
        "schema_version": entry.schema_version,
        "arguments": entry.arguments,
        "problem": entry.problem,
        "raw": entry.raw,
        "usage": {name: getattr(entry.usage, name) for name in _USAGE_FIELDS},
        "cost_usd": str(entry.cost_usd),
        "created_at": entry.created_at.isoformat(),
    }


def entry_from_json(data: dict[str, Any]) -> CachedResponse:
    """The cached response in a JSON object made by `entry_to_json`; raises `CacheEntryError` naming the field."""
    try:
        return _entry_from_json(data)
    except CacheEntryError:
        raise
    except KeyError as error:
        raise CacheEntryError(f"missing field {error}") from None
    except (ValueError, TypeError, InvalidOperation, AttributeError) as error:
        raise CacheEntryError(str(error) or error.__class__.__name__) from None


def _entry_from_json(data: dict[str, Any]) -> CachedResponse:
    if not _KEY.match(str(data["key"])):
        raise CacheEntryError("key is not a sha256 hex digest")
    if data["arguments"] is not None and not isinstance(data["arguments"], dict):
        raise CacheEntryError("arguments must be an object or null")
    created_at = datetime.fromisoformat(data["created_at"])
    if created_at.tzinfo is None:
        raise CacheEntryError("created_at needs a UTC offset")
    cost = Decimal(data["cost_usd"])
    if not cost.is_finite() or cost < 0:
        raise CacheEntryError("cost_usd must be a non-negative amount")
    return CachedResponse(
        key=data["key"],
        provider=str(data["provider"]),
        model=str(data["model"]),
        prompt_version=str(data["prompt_version"]),
        schema_version=str(data["schema_version"]),
        arguments=data["arguments"],
        problem=data["problem"],
        raw=str(data["raw"]),
        usage=Usage(**{name: int(data["usage"][name]) for name in _USAGE_FIELDS}),
        cost_usd=cost,
        created_at=created_at,
    )
