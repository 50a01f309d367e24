"""`cache export` / `cache import`: share a response cache as JSON Lines, so a backtest can be replayed elsewhere."""

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
from flask.cli import with_appcontext

from ai.cache import CachedResponse
from ai.providers.base import Usage
from app.ai_storage import SqlResponseCache
from app.extensions import db

_KEY = re.compile(r"^[0-9a-f]{64}$")
_USAGE_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


@click.group("cache")
def cache_group() -> None:
    """The LLM response cache."""


@cache_group.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@with_appcontext
def export_command(file: Path) -> None:
    """Write every cached response to FILE, one JSON object a line."""
    count = 0
    with file.open("w", encoding="utf-8") as handle:
        for entry in SqlResponseCache(db.engine).iter_all():
            handle.write(json.dumps(_to_json(entry), sort_keys=True) + "\n")
            count += 1
    click.echo(f"exported {count:,} cached response(s) to {file}")


@cache_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@with_appcontext
def import_command(file: Path) -> None:
    """Add the responses in FILE that are not cached yet. A bad line imports nothing."""
    entries = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    entries.append(_from_json(json.loads(line)))
                except (ValueError, KeyError, TypeError, InvalidOperation) as error:
                    raise click.ClickException(f"{file}:{number}: not a cached response ({error})") from None
    added = SqlResponseCache(db.engine).put_many(entries) if entries else 0
    click.echo(f"imported {added:,} new cached response(s) from {file} ({len(entries) - added:,} already cached)")


def _to_json(entry: CachedResponse) -> dict:
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


def _from_json(data: dict) -> CachedResponse:
    if not _KEY.match(str(data["key"])):
        raise ValueError("key is not a sha256 hex digest")
    if data["arguments"] is not None and not isinstance(data["arguments"], dict):
        raise ValueError("arguments must be an object or null")
    created_at = datetime.fromisoformat(data["created_at"])
    if created_at.tzinfo is None:
        raise ValueError("created_at needs a UTC offset")
    cost = Decimal(data["cost_usd"])
    if not cost.is_finite() or cost < 0:
        raise ValueError("cost_usd must be a non-negative amount")
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
