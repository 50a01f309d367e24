"""One scheduler leads, on SQLite (lease row) and PostgreSQL (lease row and advisory lock); a standby takes over
within a lease period once the leader is gone, never while it renews."""

import socket
from datetime import UTC, datetime, timedelta

from app.extensions import db
from app.services.leadership import Leadership
from tests.services.test_crash_recovery import dead_pid

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def candidates():
    return (
        Leadership(db.engine, "scheduler", "scheduler@a:1", LEASE),
        Leadership(db.engine, "scheduler", "scheduler@b:2", LEASE),
    )


def test_one_leads_and_the_other_stands_by_while_the_lease_is_renewed(app):
    first, second = candidates()
    try:
        assert first.try_lead(T0) is True
        assert second.try_lead(T0 + timedelta(seconds=1)) is False
        assert first.try_lead(T0 + timedelta(seconds=20)) is True  # renewed before it expired
        assert second.try_lead(T0 + timedelta(seconds=45)) is False  # 15 s after expiry without the renewal: not yet
        holder = second.current()
        assert holder is not None and holder.holder == "scheduler@a:1"
        assert holder.expires_at == T0 + timedelta(seconds=50)
    finally:
        first.release()
        second.release()


def test_a_dead_leader_is_replaced_within_one_lease_period(app):
    first, second = candidates()
    try:
        assert first.try_lead(T0)
        # The leader's process dies: on PostgreSQL its connection (and advisory lock) goes with it; its lease row
        # stays until it expires.
        first._drop_advisory_lock()
        assert second.try_lead(T0 + timedelta(seconds=29)) is False
        assert second.try_lead(T0 + timedelta(seconds=31)) is True
        assert second.current().holder == "scheduler@b:2"
    finally:
        second.release()


def test_a_stopping_leader_hands_over_at_once(app):
    first, second = candidates()
    try:
        assert first.try_lead(T0)
        first.release()
        assert second.try_lead(T0 + timedelta(seconds=1)) is True
    finally:
        second.release()


def test_a_leader_killed_on_this_host_is_replaced_at_once(app):
    dead = Leadership(db.engine, "scheduler", f"scheduler@{socket.gethostname()}:{dead_pid()}#dead01", LEASE)
    successor = Leadership(db.engine, "scheduler", "scheduler@b:2", LEASE)
    try:
        assert dead.try_lead(T0)
        dead._drop_advisory_lock()  # what PostgreSQL does when the process dies
        # Well inside the dead leader's lease: its process is known to be gone, so nobody has to wait it out.
        assert successor.try_lead(T0 + timedelta(seconds=1)) is True
        assert successor.current().holder == "scheduler@b:2"
    finally:
        successor.release()
