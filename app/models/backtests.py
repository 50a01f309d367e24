"""Backtest runs: settings, progress, results."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.enums import BacktestStatus
from app.models.types import Amount, JSONDocument, UTCDateTime, enum_column, utcnow, zero


class Backtest(Model):
    __tablename__ = "backtests"
    __table_args__ = (
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_fraction"),
        Index("ix_backtests_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exchange_id: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    signal_source: Mapped[str] = mapped_column(String(80))
    signal_params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # Fees, slippage, decision cadence, starting balance, risk overrides, blind mode, cost cap.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[BacktestStatus] = mapped_column(enum_column(BacktestStatus), default=BacktestStatus.QUEUED)
    progress: Mapped[float] = mapped_column(default=0.0)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    baselines: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    ai_cost_usd: Mapped[Decimal] = mapped_column(Amount, default=zero)
    ai_cache_hits: Mapped[int] = mapped_column(default=0)
    ai_cache_misses: Mapped[int] = mapped_column(default=0)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # host:pid of the worker running it and its last sign of life: a RUNNING backtest whose worker stopped beating
    # is failed on the next worker start instead of showing progress for ever.
    worker: Mapped[str | None] = mapped_column(String(120))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BacktestJournal(Model):
    """What an AI backtest's source answered, by bar, keyed by a fingerprint of every input of the run.

    An identical re-run replays it instead of rebuilding a market context per bar to look each answer up.
    """

    __tablename__ = "backtest_journals"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    decisions: Mapped[int]
    # {bar index: signal} for the bars where the answer was not HOLD.
    answers: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    original_cost_usd: Mapped[Decimal] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
