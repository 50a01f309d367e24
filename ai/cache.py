"""The response cache: identical requests are answered from storage at $0, so backtest re-runs cost nothing."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
