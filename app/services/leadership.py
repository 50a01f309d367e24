"""Exactly one leader for a singleton process (the scheduler), on SQLite and PostgreSQL.

A lease row says who leads and until when. The leader renews it well before it expires; any other candidate takes
over only once it has expired, so a dead leader is replaced within one lease period and a live one never is (at
once when the dead leader was a process of the same host, see `app.services.workers.is_gone`). On
PostgreSQL the leader also holds a session-level advisory lock on a connection of its own: the database releases it
the moment the leader's process dies, and no second process can hold it, even if clocks disagree about the lease.
"""

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, case, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from app.models import SchedulerLease
from app.services.workers import is_gone


@dataclass(frozen=True)
class LeaseHolder:
    holder: str
    expires_at: datetime


class Leadership:
    """`holder` (e.g. "scheduler@host:pid") competing to lead `name` with leases of `lease` length.

    `try_lead(now)` returns whether this holder leads after the call (acquired, renewed, or still someone else's).
    Call it more often than the lease length (a third of it is usual). `release()` gives up at once.
    """

    def __init__(self, engine: Engine, name: str, holder: str, lease: timedelta) -> None:
        self.engine, self.name, self.holder, self.lease = engine, name, holder, lease
        self._lock_connection: Connection | None = None
        self.leading = False

    def try_lead(self, now: datetime) -> bool:
        if self.engine.dialect.name == "postgresql" and not self._hold_advisory_lock():
            self.leading = False
            return False
        self.leading = self._take_or_renew(now)
        if not self.leading:
            self._drop_advisory_lock()
        return self.leading

    def current(self) -> LeaseHolder | None:
        """Who holds the lease as recorded (it may have expired)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(SchedulerLease.holder, SchedulerLease.expires_at).where(SchedulerLease.name == self.name)
            ).first()
        return LeaseHolder(row.holder, row.expires_at) if row else None

    def release(self) -> None:
        """Give the lease up now (a stopping leader lets a standby take over at its next try)."""
        if self.leading:
            with self.engine.begin() as connection:
                connection.execute(
                    delete(SchedulerLease).where(SchedulerLease.name == self.name, SchedulerLease.holder == self.holder)
                )
        self.leading = False
        self._drop_advisory_lock()

    def _take_or_renew(self, now: datetime) -> bool:
        expires = now + self.lease
        with self.engine.begin() as connection:
            # One statement decides: renew our own lease, or take one that has expired. Concurrent candidates both
            # run it; the database applies them one after the other and only the first still matches.
            renewed = connection.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == self.name,
                    (SchedulerLease.holder == self.holder) | (SchedulerLease.expires_at < now),
                )
                .values(
                    holder=self.holder,
                    renewed_at=now,
                    expires_at=expires,
                    # Evaluated on the row as it was: kept when renewing our own lease, reset when taking over.
                    acquired_at=case((SchedulerLease.holder == self.holder, SchedulerLease.acquired_at), else_=now),
                )
            )
            if renewed.rowcount:
                return True
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(SchedulerLease).values(
                        name=self.name, holder=self.holder, acquired_at=now, renewed_at=now, expires_at=expires
                    )
                )
        except IntegrityError:
            return self._take_from_the_dead(now, expires)
        return True

    def _take_from_the_dead(self, now: datetime, expires: datetime) -> bool:
        """Take over a valid lease whose holder was a process of this host that no longer exists (killed): a
        restarted scheduler leads at once instead of standing by for the rest of the dead one's lease."""
        current = self.current()
        if current is None or not is_gone(current.holder.partition("@")[2]):
            return False  # someone else's lease, still valid
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name, SchedulerLease.holder == current.holder)
                .values(holder=self.holder, acquired_at=now, renewed_at=now, expires_at=expires)
            )
        return bool(taken.rowcount)

    def _hold_advisory_lock(self) -> bool:
        if self._lock_connection is not None:
            return True
        connection = self.engine.connect()
        # Advisory locks are per database; the schema in the key keeps deployments sharing one database apart.
        schema = connection.execute(text("SELECT current_schema()")).scalar()
        key = zlib.crc32(f"steadyhand:{schema}:{self.name}".encode())
        held = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        connection.commit()
        if held:
            self._lock_connection = connection
            return True
        connection.close()
        return False

    def _drop_advisory_lock(self) -> None:
        if self._lock_connection is not None:
            # A closed connection goes back to the pool with its session, and the session keeps its advisory locks:
            # they are released explicitly. (A process that dies loses its connections, and the locks with them.)
            self._lock_connection.execute(text("SELECT pg_advisory_unlock_all()"))
            self._lock_connection.commit()
            self._lock_connection.close()
            self._lock_connection = None
