"""The service's operational figures, read from the database on each scrape of `/metrics`.

They are aggregates of the whole installation (counts by status, sums by provider and model), never one user's
records, names or amounts, nor anything secret. Reading them from the database rather than from process memory
keeps them right however many processes there are: every gunicorn worker and the separate scheduler answer the
same. They count rows on record, not events: rows can be deleted (a watch's runs with it, a user's analyses,
accounts and orders with them), so no figure here only ever grows and `/metrics` exposes every one as a gauge.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.models import Analysis, NotificationDelivery, Order, SchedulerLease, WatchRun
from app.models.enums import DeliveryStatus, RunStatus
from app.services import Session
from exchanges.orders import OrderSide, OrderStatus

SCHEDULER_LEASE = "scheduler"  # the lease the scheduler job competes for (app/jobs/scheduler.py)
# Run latency covers the runs that finished in this window before the scrape (by `finished_at`).
RUN_LATENCY_WINDOW = timedelta(hours=24)
# Upper bounds (seconds) of the run latency histogram's buckets; +Inf is added.
RUN_LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OUTBOX_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class Spend:
    provider: str
    model: str
    analyses: int
    cost_usd: Decimal


@dataclass(frozen=True)
class Leader:
    holder: str  # "" when no unexpired lease names a leader
    leading: bool
    expires_at: datetime | None


@dataclass(frozen=True)
class MetricsSnapshot:
    runs_by_status: dict[str, int]  # every RunStatus, 0 when none
    run_seconds: list[float]  # finished_at - started_at of the runs that finished within RUN_LATENCY_WINDOW
    spend: list[Spend]  # by provider and model, sorted
    orders: dict[tuple[str, str], int]  # (status, side) -> count, every pair present
    leader: Leader
    outbox: dict[str, int]  # pending and failed deliveries


def metrics_snapshot(session: Session, now: datetime) -> MetricsSnapshot:
    """The current figures, in a handful of aggregate queries. Reads only."""
    runs = {status.value: 0 for status in RunStatus}
    for run_status, count in session.execute(select(WatchRun.status, func.count()).group_by(WatchRun.status)):
        runs[RunStatus(run_status).value] = count

    finished = session.execute(
        select(WatchRun.started_at, WatchRun.finished_at).where(
            WatchRun.finished_at.is_not(None),
            WatchRun.started_at.is_not(None),
            WatchRun.finished_at > now - RUN_LATENCY_WINDOW,
            WatchRun.finished_at <= now,
        )
    )
    seconds = [max((end - start).total_seconds(), 0.0) for start, end in finished if start and end]

    spend_rows = session.execute(
        select(Analysis.provider, Analysis.model, func.count(), func.coalesce(func.sum(Analysis.cost_usd), 0))
        .group_by(Analysis.provider, Analysis.model)
        .order_by(Analysis.provider, Analysis.model)
    )
    spend = [Spend(provider, model or "", count, Decimal(total)) for provider, model, count, total in spend_rows]

    orders = {(status.value, side.value): 0 for status in OrderStatus for side in OrderSide}
    for order_status, side, count in session.execute(
        select(Order.status, Order.side, func.count()).group_by(Order.status, Order.side)
    ):
        orders[(OrderStatus(order_status).value, OrderSide(side).value)] = count

    lease = session.get(SchedulerLease, SCHEDULER_LEASE)
    if lease is not None and lease.expires_at > now:
        leader = Leader(lease.holder, True, lease.expires_at)
    else:
        leader = Leader("", False, None)

    outbox = {status.value: 0 for status in OUTBOX_STATUSES}
    for delivery_status, count in session.execute(
        select(NotificationDelivery.status, func.count())
        .where(NotificationDelivery.status.in_(OUTBOX_STATUSES))
        .group_by(NotificationDelivery.status)
    ):
        outbox[DeliveryStatus(delivery_status).value] = count

    return MetricsSnapshot(runs, seconds, spend, orders, leader, outbox)
