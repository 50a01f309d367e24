"""The LLM response cache as a file: export it, import it elsewhere, so a backtest can be replayed at $0."""

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from ai.cache import CachedResponse, CacheEntryError, entry_from_json, entry_to_json
from app.errors import ConflictError, InvalidInputError, ServiceError
from app.persistence import engine_of
from app.persistence.response_cache import SqlResponseCache


class FileError(ServiceError):
    """The file could not be read or written (permissions, a missing folder, a full disk)."""

    code = "FILE_ERROR"
    http_status = 500


def export_cache(session: Session, path: Path, *, overwrite: bool = False) -> int:
    """Write every cached response to `path` as JSON Lines; returns how many.

    Raises `ConflictError` when `path` exists and `overwrite` is not set (nothing is touched), `FileError` with one
    line for any I/O failure (a partly written new file is removed).
    """
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder, not a file", field="file")
    if path.exists() and not overwrite:
        raise ConflictError(f"{path} already exists: choose another file, or overwrite it explicitly", field="file")
    temporary = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            for entry in SqlResponseCache(engine_of(session)).iter_all():
                handle.write(json.dumps(entry_to_json(entry), sort_keys=True) + "\n")
                count += 1
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise FileError(f"cannot write {path}: {error.strerror or error}", field="file") from None
    return count


@dataclass(frozen=True)
class CacheImport:
    read: int
    added: int

    @property
    def already_cached(self) -> int:
        return self.read - self.added


def import_cache(session: Session, path: Path) -> CacheImport:
    """Add the responses in a JSON Lines file that are not cached yet. A bad line imports nothing.

    Raises `InvalidInputError` naming the file and line of the first bad entry, `FileError` when it cannot be read.
    Commits its own short transaction (the cache is shared by every user).
    """
    entries: list[CachedResponse] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    if not isinstance(data, dict):
                        raise CacheEntryError("expected a JSON object")
                    entries.append(entry_from_json(data))
                except (ValueError, CacheEntryError) as error:
                    raise InvalidInputError(f"{path}:{number}: not a cached response ({error})", field="file") from None
    except OSError as error:
        raise FileError(f"cannot read {path}: {error.strerror or error}", field="file") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not a UTF-8 text file", field="file") from None
    added = SqlResponseCache(engine_of(session)).put_many(entries) if entries else 0
    return CacheImport(len(entries), added)
