"""Scheduled work: one run per watch and closed bar, the scheduler's leadership lease, operator settings."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.enums import RunStatus
from app.models.types import JSONDocument, UTCDateTime, enum_column, utcnow


class WatchRun(Model):
    """A watch's analysis of one closed bar. The unique (watch, bar) key makes a double trigger, a restart or a
    second worker harmless: only one run per bar can ever be recorded."""

    __tablename__ = "watch_runs"
    __table_args__ = (
        UniqueConstraint("watch_id", "bar_time"),
        Index("ix_watch_runs_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watches.id", ondelete="CASCADE"), index=True)
    bar_time: Mapped[datetime] = mapped_column(UTCDateTime)  # open time of the closed bar analysed
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, catch_up or manual
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus), default=RunStatus.QUEUED)
    # [{"step": "candles", "ms": 12.5, "outcome": "ok"}, ...] in the order the steps ran.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    failed_step: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(48))
    error_message: Mapped[str | None] = mapped_column(Text)
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("analyses.id", ondelete="SET NULL"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    worker: Mapped[str | None] = mapped_column(String(120))  # host:pid that ran it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SchedulerLease(Model):
    """Who leads a singleton process (the scheduler) and until when; a holder renews before `expires_at`, and
    another takes over once it has passed. PostgreSQL also holds an advisory lock; SQLite relies on the lease."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OperatorSetting(Model):
    """A setting of the whole service, changed by an operator (e.g. the global kill switch); audited."""

    __tablename__ = "operator_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(120))
