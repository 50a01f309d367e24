"""The budget ledger in the database: reservations, settlements and releases of paid AI calls.

Each call commits in its own short transaction: a reservation must be on record even when the analysis that asked
for it fails afterwards.
"""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Engine, case, func, select, update
from sqlalchemy.orm import Session

from ai.budget import BudgetCaps, BudgetScope, check_period_cap
from app.models import BudgetLedgerEntry, LedgerStatus, User
from app.models.types import DECIMAL_SCALE

_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of `now`'s UTC day and UTC month: the budget periods."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def committed_usd(session: Session, user_id: int, since: datetime) -> Decimal:
    """USD the user has spent (settled) or holds reserved since `since`."""
    return SqlBudgetLedger._committed(session, BudgetLedgerEntry.user_id == user_id, since)


def key_committed_usd(session: Session, api_key_id: int, since: datetime) -> Decimal:
    """USD spent (settled) or held reserved since `since` by calls made through the API key."""
    return SqlBudgetLedger._committed(session, BudgetLedgerEntry.api_key_id == api_key_id, since)


class SqlBudgetLedger:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reserve(
        self, scope: BudgetScope, caps: BudgetCaps, amount: Decimal, provider: str, model: str, now: datetime
    ) -> int:
        """Reserve `amount` USD for one call and return the entry's id, after checking under the user's row lock
        every cap that applies: the user's daily and monthly, the watch's daily (with `scope.watch_id`) and the API
        key's daily and monthly (with `scope.api_key_id`; only that key's entries count toward them). What counts is
        what was settled plus what is still reserved since the UTC day or month began. Raises `BudgetExceededError`
        naming the cap ("daily", "monthly", "watch daily", "API key daily", "API key monthly")."""
        with Session(self._engine) as session, session.begin():
            self._serialize_per_user(session, scope.user_id)
            day, month = period_starts(now)
            user_filter = BudgetLedgerEntry.user_id == scope.user_id
            check_period_cap("daily", caps.user_daily, self._committed(session, user_filter, day), amount)
            check_period_cap("monthly", caps.user_monthly, self._committed(session, user_filter, month), amount)
            if scope.watch_id is not None:
                watch_filter = BudgetLedgerEntry.watch_id == scope.watch_id
                check_period_cap("watch daily", caps.watch_daily, self._committed(session, watch_filter, day), amount)
            if scope.api_key_id is not None:
                # The key is the user's: the user's row lock above already makes its reservations take turns.
                key_filter = BudgetLedgerEntry.api_key_id == scope.api_key_id
                check_period_cap("API key daily", caps.key_daily, self._committed(session, key_filter, day), amount)
                check_period_cap(
                    "API key monthly", caps.key_monthly, self._committed(session, key_filter, month), amount
                )
            entry = BudgetLedgerEntry(
                user_id=scope.user_id,
                watch_id=scope.watch_id,
                api_key_id=scope.api_key_id,
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
