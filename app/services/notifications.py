"""Notifications: the outbox that sends a user's events to their channels (`app.services.notification_channels`).

Sending never sits on a run's path: `notify` only writes one PENDING `NotificationDelivery` per enabled channel
subscribed to the event (no network, nothing that can fail because of a notifier), and `deliver_due`, called by a
job every few seconds, sends what is due. A failed send is retried with backoff (30 s, 60 s, 120 s, ... capped at
one hour) and marked FAILED after `MAX_ATTEMPTS`; one failing channel never stops the others.
The wire formats (the webhook's body and signature, Apprise's messages) are in `app.services.notification_wire`.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError, shown
from app.models import DeliveryStatus, NotificationChannel, NotificationDelivery
from app.services import system_clock
from app.services.credentials import vault
from app.services.notification_channels import owned_channel
from app.services.notification_wire import (
    EVENTS,
    TEST_EVENT,
    OutgoingMessage,
    Sender,
    send_message,
)
from exchanges.vault import VaultDecryptionError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6

BACKOFF_BASE = timedelta(seconds=30)

BACKOFF_CAP = timedelta(hours=1)

_ERROR_MAX = 500


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: int
    channel_id: int
    status: DeliveryStatus
    attempts: int
    error: str | None
    next_attempt_at: datetime | None  # when it is retried; None once sent or failed for good


@dataclass(frozen=True)
class DeliveryReport:
    outcomes: tuple[DeliveryOutcome, ...]

    def count(self, status: DeliveryStatus) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


def notify(
    session: Session, user_id: int, event: str, payload: Mapping[str, Any], *, now: datetime | None = None
) -> int:
    """Queue `event` for every enabled channel of the user subscribed to it; returns how many deliveries.

    Fast and network-free, so a run never waits or fails because of a notifier. Decimals and datetimes in `payload`
    are written as text. Raises `InvalidInputError` (field `event`) for an unknown event. The caller commits.
    """
    if event not in EVENTS:
        raise InvalidInputError(f'event must be one of {", ".join(EVENTS)}, got "{event}"', field="event")
    document = _json_ready(dict(payload))
    due = now or system_clock()
    queued = 0
    channels = session.scalars(
        select(NotificationChannel).where(NotificationChannel.user_id == user_id, NotificationChannel.enabled.is_(True))
    )
    for channel in channels:
        if channel.events and event not in channel.events:
            continue
        session.add(
            NotificationDelivery(
                channel_id=channel.id,
                event=event,
                payload=document,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=due,
                created_at=due,
            )
        )
        queued += 1
    session.flush()
    return queued


def deliver_due(
    session: Session, settings: Settings, now: datetime, send: Sender | None = None, limit: int = 100
) -> DeliveryReport:
    """Send the PENDING deliveries due at `now` (oldest first, at most `limit`), each to its own channel.

    A send that fails records `last_error`, counts the attempt and is retried after `backoff(attempts)`, or is marked
    FAILED after `MAX_ATTEMPTS`; it never stops the others. Commits after each delivery, so a crash never resends
    what went out. `send` defaults to `send_message` (Apprise or the signed webhook).
    """
    due = session.scalars(
        select(NotificationDelivery)
        .join(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
        .where(
            NotificationDelivery.status == DeliveryStatus.PENDING,
            NotificationDelivery.next_attempt_at <= now,
            NotificationChannel.enabled.is_(True),
        )
        .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
        .limit(limit)
    ).all()
    outcomes = []
    for delivery in due:
        outcomes.append(_attempt(session, settings, delivery, now, send or send_message, retries=True))
        session.commit()
    return DeliveryReport(tuple(outcomes))


def send_test(
    session: Session,
    settings: Settings,
    user_id: int,
    channel_id: int | str,
    now: datetime,
    send: Sender | None = None,
) -> DeliveryOutcome:
    """Queue a test event for one of the user's channels and send it right away; a test is tried once, and is sent
    even to a disabled channel (asked for by name, it is how a user checks a channel before enabling it again).

    Commits the delivery and its outcome. Raises `NotFoundError` (field `channel_id`) when the channel is missing or
    someone else's; a failed send is an outcome, not an error.
    """
    channel = owned_channel(session, user_id, channel_id)
    delivery = NotificationDelivery(
        channel_id=channel.id,
        event=TEST_EVENT,
        payload={"message": "A test from Steadyhand: this channel works.", "channel": channel.label},
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    outcome = _attempt(session, settings, delivery, now, send or send_message, retries=False)
    session.commit()
    return outcome


def backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed attempt a delivery is tried again: 30 s doubling, capped at 1 h."""
    return min(BACKOFF_BASE * (1 << max(attempts - 1, 0)), BACKOFF_CAP)


def _attempt(
    session: Session, settings: Settings, delivery: NotificationDelivery, now: datetime, send: Sender, *, retries: bool
) -> DeliveryOutcome:
    channel = session.get_one(NotificationChannel, delivery.channel_id)
    delivery.attempts += 1
    target = ""
    try:
        secrets = vault(settings)
        target = secrets.decrypt(channel.target_encrypted)
        secret = secrets.decrypt(channel.secret_encrypted) if channel.secret_encrypted else None
        send(
            OutgoingMessage(
                delivery_id=delivery.id,
                kind=channel.kind,
                target=target,
                secret=secret,
                event=delivery.event,
                payload=dict(delivery.payload),
                created_at=delivery.created_at,
                now=now,
            )
        )
    except VaultDecryptionError:
        error = "the channel's URL cannot be decrypted with the configured keys"
    except Exception as failure:  # any notifier failure is this delivery's outcome, never the caller's
        error = _redacted(str(failure) or failure.__class__.__name__, target)
    else:
        delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, now, None
        return DeliveryOutcome(delivery.id, channel.id, DeliveryStatus.SENT, delivery.attempts, None, None)
    delivery.last_error = error[:_ERROR_MAX]
    if retries and delivery.attempts < MAX_ATTEMPTS:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
        retry_at: datetime | None = delivery.next_attempt_at
    else:
        delivery.status, retry_at = DeliveryStatus.FAILED, None
    log.info(
        "notification not sent",
        extra={"delivery_id": delivery.id, "channel_id": channel.id, "attempts": delivery.attempts, "reason": error},
    )
    return DeliveryOutcome(delivery.id, channel.id, delivery.status, delivery.attempts, delivery.last_error, retry_at)


def _redacted(text: str, target: str) -> str:
    """`text` without the channel's URL or any token-like piece of it."""
    if not target:
        return text
    pieces = {target, *(piece for piece in re.split(r"[/:@?&=#,;]+", target) if len(piece) >= 6)}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, Decimal):
        return shown(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
