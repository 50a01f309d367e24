"""One trading step per account at a time, across threads, processes and machines.

Two watches of one account run side by side in the scheduler's pool (or on two Celery workers), and a person may
run `analyze --execute` or `reconcile` meanwhile. A trading step reads the account's cash and positions, decides,
sends an order and records its fill: two interleaved steps would both spend the same cash, or one would overwrite
the balance the other wrote. Every step that can move an account's money holds the account's lock.

PostgreSQL: a session-level advisory lock keyed by the deployment's schema and the account id, on a connection of
its own; the database frees it the moment the holder's process dies. SQLite (one machine): a lease row named
`account:ID` holding `host:pid`; a waiter takes over at once from a process of the same host that no longer
exists, and from anyone once the lease has expired.
"""

import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.errors import ServiceError
from app.models import Account, SchedulerLease
from app.services import Clock, system_clock
from app.services.workers import is_gone, worker_name

WAIT = timedelta(seconds=60)  # longer than a trading step with an exchange's retries takes
LEASE = timedelta(minutes=10)  # SQLite only: how long a holder that vanished on another host can block
_POLL_FIRST, _POLL_MAX = 0.01, 0.1  # SQLite: seconds between attempts, doubling (PostgreSQL waits in the database)


class AccountBusyError(ServiceError):
    """Another trading step of the same account did not finish within the wait: nothing was done."""

    code = "ACCOUNT_BUSY"
    http_status = 409


@contextmanager
def account_lock(
    session: Session,
    account: Account,
    wait: timedelta = WAIT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = system_clock,
) -> Iterator[None]:
    """Hold `account`'s trading lock for the block; on entry the session's state is committed and every loaded
    object expired, so the block reads what the previous holder wrote.

    Raises `AccountBusyError` (naming the holder where known) when the lock stays taken for `wait`.
    """
    session.commit()  # SQLite: our own open write transaction would block the lease's write
    engine = session.get_bind()
    assert isinstance(engine, Engine)  # services run on the app's engine, never on a bare connection
    holder = f"{worker_name()}#{secrets.token_hex(3)}"
    lock: _AdvisoryLock | _LeaseLock = (
        _AdvisoryLock(engine, account.id) if engine.dialect.name == "postgresql" else _LeaseLock(engine, account.id)
    )
    deadline, pause = time.monotonic() + wait.total_seconds(), _POLL_FIRST
    while not lock.try_acquire(holder, clock(), max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            raise AccountBusyError(
                f"account #{account.id} ({account.name}) is busy: another trading step "
                f"{lock.describe_holder()}has held it for more than {wait.total_seconds():.0f} s; nothing was done",
                details={"account_id": account.id},
            )
        sleep(pause)
        pause = min(pause * 2, _POLL_MAX)
    try:
        session.expire_all()
        yield
    finally:
        lock.release(holder)


class _AdvisoryLock:
    def __init__(self, engine: Engine, account_id: int) -> None:
        self.engine, self.account_id = engine, account_id
        self.connection: Connection | None = None

    def try_acquire(self, holder: str, now: datetime, patience: float) -> bool:
        """Take the lock, waiting up to `patience` seconds inside the database: a waiter is woken the moment the
        holder releases it (no polling delay when watches of one account queue for it)."""
        connection = self.engine.connect()
        # Advisory locks are per database; the schema keeps deployments that share one database apart.
        schema = connection.execute(text("SELECT current_schema()")).scalar()
        key = {"namespace": zlib.crc32(f"steadyhand:{schema}:account".encode()) - 2**31, "account": self.account_id}
        if patience <= 0:
            held = connection.execute(text("SELECT pg_try_advisory_lock(:namespace, :account)"), key).scalar()
        else:
            # lock_timeout bounds the wait (a session-level advisory lock outlives the transaction that took it).
            connection.execute(text(f"SET LOCAL lock_timeout = '{max(1, int(patience * 1000))}ms'"))
            try:
                connection.execute(text("SELECT pg_advisory_lock(:namespace, :account)"), key)
                held = True
            except OperationalError:  # lock_timeout: still held by another step
                connection.rollback()
                held = False
        connection.commit()
        if held:
            self.connection = connection
            return True
        connection.close()
        return False

    def release(self, holder: str) -> None:
        if self.connection is not None:
            # The pool keeps the server session alive, and its advisory locks with it: unlock before returning it.
            self.connection.execute(text("SELECT pg_advisory_unlock_all()"))
            self.connection.commit()
            self.connection.close()
            self.connection = None

    def describe_holder(self) -> str:
        return ""


class _LeaseLock:
    def __init__(self, engine: Engine, account_id: int) -> None:
        self.engine, self.name = engine, f"account:{account_id}"
        self.seen: str | None = None

    def try_acquire(self, holder: str, now: datetime, patience: float) -> bool:
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(SchedulerLease).values(
                        name=self.name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + LEASE
                    )
                )
            return True
        except IntegrityError:
            pass
        with self.engine.begin() as connection:
            row = connection.execute(
                select(SchedulerLease.holder, SchedulerLease.expires_at).where(SchedulerLease.name == self.name)
            ).first()
            if row is None:
                return False  # released just now: the next attempt inserts
            self.seen = row.holder
            if row.expires_at > now and not is_gone(row.holder):
                return False
            # The holder is gone: take its lease over, unless another waiter did first (then the holder differs).
            taken = connection.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name, SchedulerLease.holder == row.holder)
                .values(holder=holder, acquired_at=now, renewed_at=now, expires_at=now + LEASE)
            )
            return bool(taken.rowcount)

    def release(self, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(SchedulerLease).where(SchedulerLease.name == self.name, SchedulerLease.holder == holder)
            )

    def describe_holder(self) -> str:
        return f"({self.seen.partition('#')[0]}) " if self.seen else ""
