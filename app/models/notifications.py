"""Where a user's notifications go, and each delivery, kept as an outbox so sending never blocks a run."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.enums import DeliveryStatus
from app.models.types import JSONDocument, UTCDateTime, enum_column, utcnow


class NotificationChannel(Model):
    """An Apprise URL (Telegram, Slack, Discord, e-mail, ...) or a signed JSON webhook. The URL carries tokens, so it
    is encrypted at rest like exchange keys and shown only as its masked hint."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # apprise or webhook
    label: Mapped[str] = mapped_column(String(80))
    target_encrypted: Mapped[str] = mapped_column(Text)
    target_hint: Mapped[str] = mapped_column(String(120))
    # The webhook's HMAC-SHA256 signing secret (encrypted); None for Apprise channels.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONDocument, default=list)  # empty: every event
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationDelivery(Model):
    """One event to one channel: pending until sent, retried with backoff, failed after the last attempt."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
