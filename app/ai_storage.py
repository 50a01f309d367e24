"""Database-backed implementations of the AI layer's protocols: the budget ledger and the response cache.

Both commit in their own short transactions: a reservation or a paid answer must be on record even when the
analysis that asked for it fails afterwards.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Engine, case, func, select, update
from sqlalchemy.orm import Session

from ai.budget import BudgetCaps, BudgetScope, check_period_cap
from ai.cache import CachedResponse
from ai.providers.base import Usage
from app.db_writes import insert_ignoring_duplicates
from app.models import BudgetLedgerEntry, LedgerStatus, ResponseCacheEntry, User
from app.models.types import DECIMAL_SCALE

_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_CACHE_BATCH = 500


class SqlBudgetLedger:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reserve(
        self, scope: BudgetScope, caps: BudgetCaps, amount: Decimal, provider: str, model: str, now: datetime
    ) -> int:
        with Session(self._engine) as session, session.begin():
            self._serialize_per_user(session, scope.user_id)
            day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            month = day.replace(day=1)
            user_filter = BudgetLedgerEntry.user_id == scope.user_id
            check_period_cap("daily", caps.user_daily, self._committed(session, user_filter, day), amount)
            check_period_cap("monthly", caps.user_monthly, self._committed(session, user_filter, month), amount)
            if scope.watch_id is not None:
                watch_filter = BudgetLedgerEntry.watch_id == scope.watch_id
                check_period_cap("watch daily", caps.watch_daily, self._committed(session, watch_filter, day), amount)
            entry = BudgetLedgerEntry(
                user_id=scope.user_id,
                watch_id=scope.watch_id,
                provider=provider,
                model=model,
                status=LedgerStatus.RESERVED,
                reserved_usd=amount,
                created_at=now,
            )
            session.add(entry)
            session.flush()
            return entry.id

    def settle(self, reservation_id: int, actual: Decimal, now: datetime) -> None:
        self._close(reservation_id, LedgerStatus.SETTLED, actual, now)

    def release(self, reservation_id: int, now: datetime) -> None:
        self._close(reservation_id, LedgerStatus.RELEASED, Decimal(0), now)

    def _close(self, reservation_id: int, status: LedgerStatus, amount: Decimal, now: datetime) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(BudgetLedgerEntry)
                .where(BudgetLedgerEntry.id == reservation_id, BudgetLedgerEntry.status == LedgerStatus.RESERVED)
                .values(status=status, settled_usd=amount, settled_at=now)
            )

    @staticmethod
    def _serialize_per_user(session: Session, user_id: int) -> None:
        """Make concurrent reservations of one user take turns, so two cannot both fit under a cap.

        A no-op write on the user's row is the one statement that serializes on both backends: PostgreSQL
        locks the row until commit, SQLite takes its database write lock at the first write.
        """
        session.execute(update(User).where(User.id == user_id).values(id=User.id))

    @staticmethod
    def _committed(session: Session, condition: ColumnElement[bool], since: datetime) -> Decimal:
        amount = case(
            (BudgetLedgerEntry.status == LedgerStatus.SETTLED, BudgetLedgerEntry.settled_usd),
            (BudgetLedgerEntry.status == LedgerStatus.RESERVED, BudgetLedgerEntry.reserved_usd),
            else_=0,
        )
        total = session.scalar(
            select(func.coalesce(func.sum(amount), 0)).where(condition, BudgetLedgerEntry.created_at >= since)
        )
        # SQLite sums NUMERIC as floats: round back to the stored scale before comparing with a cap.
        return Decimal(str(total)).quantize(_QUANTUM)


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

    def iter_all(self) -> Iterable[CachedResponse]:
        with Session(self._engine) as session:
            for row in session.scalars(select(ResponseCacheEntry).order_by(ResponseCacheEntry.created_at)):
                yield _cached(row)


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


def _row(entry: CachedResponse) -> dict:
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
