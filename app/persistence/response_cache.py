"""The response cache in the database (the AI layer's `ResponseCache` port).

Writes commit in their own short transaction: a paid answer must be on record even when the analysis that asked
for it fails afterwards.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ai.cache import CachedResponse
from ai.prompts import PROMPT_VERSION
from ai.providers.base import Usage
from ai.signal import SCHEMA_VERSION
from app.models import ResponseCacheEntry
from app.persistence.bulk import insert_ignoring_duplicates

_CACHE_BATCH = 500


class SqlResponseCache:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: str) -> CachedResponse | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CachedResponse] = {}
        with Session(self._engine) as session:
            for start in range(0, len(wanted), _CACHE_BATCH):
                batch = wanted[start : start + _CACHE_BATCH]
                rows = session.scalars(select(ResponseCacheEntry).where(ResponseCacheEntry.key.in_(batch)))
                found.update((row.key, _cached(row)) for row in rows)
        return found

    def put(self, entry: CachedResponse) -> None:
        self.put_many([entry])

    def put_many(self, entries: Iterable[CachedResponse]) -> int:
        """Store entries whose key is not stored yet; returns how many were new."""
        rows = [_row(entry) for entry in entries]
        with Session(self._engine) as session, session.begin():
            existing = set(
                session.scalars(
                    select(ResponseCacheEntry.key).where(ResponseCacheEntry.key.in_([r["key"] for r in rows]))
                )
            )
            new_rows = [row for row in rows if row["key"] not in existing]
            insert_ignoring_duplicates(session, ResponseCacheEntry, new_rows)
        return len(new_rows)

    def load(self, provider: str, model: str, prompt_version: str, schema_version: str) -> dict[str, CachedResponse]:
        """Every entry for one provider, model and prompt: a backtest's whole cache in one query."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(ResponseCacheEntry).where(
                    ResponseCacheEntry.provider == provider,
                    ResponseCacheEntry.model == model,
                    ResponseCacheEntry.prompt_version == prompt_version,
                    ResponseCacheEntry.schema_version == schema_version,
                )
            )
            return {row.key: _cached(row) for row in rows}

    def iter_all(self) -> Iterator[CachedResponse]:
        with Session(self._engine) as session:
            for row in session.scalars(select(ResponseCacheEntry).order_by(ResponseCacheEntry.created_at)):
                yield _cached(row)


class PreloadedCache:
    """The response cache for one provider and model, loaded in one query before a backtest, written through."""

    def __init__(self, store: SqlResponseCache, provider: str, model: str) -> None:
        self._store = store
        self._entries = store.load(provider, model, PROMPT_VERSION, SCHEMA_VERSION)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedResponse | None:
        return self._entries.get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        return {key: self._entries[key] for key in keys if key in self._entries}

    def put(self, entry: CachedResponse) -> None:
        self._entries[entry.key] = entry
        self._store.put(entry)


def _cached(row: ResponseCacheEntry) -> CachedResponse:
    return CachedResponse(
        key=row.key,
        provider=row.provider,
        model=row.model,
        prompt_version=row.prompt_version,
        schema_version=row.schema_version,
        arguments=row.arguments,
        problem=row.problem,
        raw=row.raw,
        usage=Usage(
            input_tokens=row.input_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
            output_tokens=row.output_tokens,
            reasoning_tokens=row.reasoning_tokens,
        ),
        cost_usd=row.cost_usd,
        created_at=row.created_at,
    )


def _row(entry: CachedResponse) -> dict[str, Any]:
    return {
        "key": entry.key,
        "provider": entry.provider,
        "model": entry.model,
        "prompt_version": entry.prompt_version,
        "schema_version": entry.schema_version,
        "arguments": entry.arguments,
        "problem": entry.problem,
        "raw": entry.raw,
        "input_tokens": entry.usage.input_tokens,
        "cache_read_tokens": entry.usage.cache_read_tokens,
        "cache_write_tokens": entry.usage.cache_write_tokens,
        "output_tokens": entry.usage.output_tokens,
        "reasoning_tokens": entry.usage.reasoning_tokens,
        "cost_usd": entry.cost_usd,
        "created_at": entry.created_at,
    }
