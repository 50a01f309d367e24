"""Idempotent writes: a POST repeated with the same `Idempotency-Key` answers what the first one answered, without a
second paid call, order or job.

The key is taken (a unique row per user and key, committed) before the request runs, so two concurrent repeats
cannot both run: the second is refused as in progress. A request that ends in an error frees its key, so a corrected
retry with the same key runs; one that succeeded keeps its response for `RETENTION` (Stripe's 24 hours,
https://docs.stripe.com/api/idempotent_requests). A key held by a request that never finished (its process died) is
taken over after `STALE_AFTER`.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ConflictError, InvalidInputError
from app.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str  # the JSON text the first request answered
    location: str | None


@dataclass(frozen=True)
class Claim:
    """The outcome of `claim`: either the key is now held for this request (`record_id`), or `stored` is the answer."""

    record_id: int | None = None
    stored: StoredResponse | None = None


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, path and body. A JSON body is compared by content (key order and spacing aside)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(b"\n".join([method.upper().encode(), path.encode(), canonical])).hexdigest()


def claim(session: Session, user_id: int, key: str, method: str, path: str, fingerprint: str, now: datetime) -> Claim:
    """Hold `key` for this request (committed at once), or the stored answer of its completed first use.

    Raises `InvalidInputError` (field `Idempotency-Key`) for an empty or over-long key; `ConflictError` with code
    `IDEMPOTENCY_KEY_REUSED` when the key was used for a different request (method, path or body) and
    `IDEMPOTENCY_IN_PROGRESS` while its first use is still running.
    """
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInputError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters, got {key[:40]!r}",
            field="Idempotency-Key",
        )
    for _ in range(2):  # a stale or expired holder is removed once, then the key is taken afresh
        record = IdempotencyRecord(
            user_id=user_id, key=key, method=method, path=path, request_hash=fingerprint, created_at=now
        )
        session.add(record)
        try:
            session.commit()
            return Claim(record_id=record.id)
        except IntegrityError:
            session.rollback()
        existing = session.scalar(
            select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        )
        if existing is None:
            continue  # freed between our insert and this read: try again
        expired = existing.created_at <= now - RETENTION
        stale = existing.status_code is None and existing.created_at <= now - STALE_AFTER
        if expired or stale:
            session.delete(existing)
            session.commit()
            continue
        if existing.request_hash != fingerprint:
            raise ConflictError(
                f"Idempotency-Key {key!r} was already used for a different request "
                f"({existing.method} {existing.path} with another body); use a new key for a new request",
                code="IDEMPOTENCY_KEY_REUSED",
                field="Idempotency-Key",
            )
        if existing.status_code is None or existing.response_body is None:
            raise ConflictError(
                f"a request with Idempotency-Key {key!r} is still in progress; retry after it has finished",
                code="IDEMPOTENCY_IN_PROGRESS",
                field="Idempotency-Key",
            )
        return Claim(stored=StoredResponse(existing.status_code, existing.response_body, existing.response_location))
    raise ConflictError(
        f"a request with Idempotency-Key {key!r} is still in progress; retry after it has finished",
        code="IDEMPOTENCY_IN_PROGRESS",
        field="Idempotency-Key",
    )


def complete(session: Session, record_id: int, response: StoredResponse, now: datetime) -> None:
    """Store the response of the request holding `record_id`; the caller commits."""
    record = session.get(IdempotencyRecord, record_id)
    if record is not None:
        record.status_code = response.status_code
        record.response_body = response.body
        record.response_location = response.location
        record.completed_at = now


def release(session: Session, record_id: int) -> None:
    """Free the key of a request that ended in an error, so a retry with the same key runs; commits."""
    session.rollback()
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    session.commit()


def purge(session: Session, now: datetime) -> int:
    """Delete records past `RETENTION`; returns how many. The caller commits."""
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= now - RETENTION))
    return int(getattr(result, "rowcount", 0) or 0)
