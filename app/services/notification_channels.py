"""Notification channels: where a user's events go, an Apprise URL or a signed JSON webhook.

A channel is either an **Apprise URL** (`tgram://`, `slack://`, `discord://`, `mailto://`, `json://`, ... one
well-kept library instead of one client per service) or a **signed JSON webhook**. Its URL carries tokens, so it
is encrypted at rest with the app's vault and only ever shown as a masked hint (`tg******wxyz`). A disabled channel
gets nothing: what was still queued for it when it was disabled is marked FAILED (`not sent: the channel was
disabled`), so enabling it again never sends old events. Sending is `app.services.notifications` (the outbox).
"""

import secrets as secret_tokens
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError, NotFoundError
from app.models import DeliveryStatus, NotificationChannel, NotificationDelivery
from app.services.credentials import vault
from app.services.lookup import owned
from app.services.notification_wire import (
    APPRISE,
    EVENTS,
    WEBHOOK,
    apprise_accepts,
    apprise_schemes_like,
    apprise_service,
)
from exchanges.vault import mask_secret

LABEL_MAX = 80

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})

DISABLED_ERROR = "not sent: the channel was disabled"


@dataclass(frozen=True)
class ChannelView:
    """A channel as a user may see it: never its URL or secret, only the masked hint."""

    id: int
    kind: str
    label: str
    hint: str
    events: tuple[str, ...]  # empty: every event
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class NewChannel:
    channel: ChannelView
    # The webhook's signing secret, to show once; None for an Apprise channel.
    secret: str | None


def add_apprise_channel(
    session: Session, settings: Settings, user_id: int, url: str, events: str | Sequence[str] = (), label: str = ""
) -> NewChannel:
    """Store an Apprise URL (encrypted) as a channel. The caller commits.

    Raises `InvalidInputError` (field `apprise_url`, `events` or `label`) when Apprise does not recognise the URL
    (saying whether its scheme is unknown, or known but the URL incomplete, with the service's documented form),
    an event is unknown, no event is named or the label is too long; the URL is only ever named by its masked hint.
    """
    url = url.strip()
    if not url or not apprise_accepts(url):
        raise InvalidInputError(f'apprise_url {_apprise_url_problem(url)}, got "{hint_of(url)}"', field="apprise_url")
    chosen, name = _check_events(events), _check_label(label, default=urlsplit(url).scheme or APPRISE)
    channel = _save_channel(session, settings, user_id, APPRISE, url, None, chosen, name)
    return NewChannel(view(channel), None)


def add_webhook_channel(
    session: Session, settings: Settings, user_id: int, url: str, events: str | Sequence[str] = (), label: str = ""
) -> NewChannel:
    """Store a signed JSON webhook (URL encrypted) with a new random signing secret, returned once. The caller commits.

    Raises `InvalidInputError` (field `webhook_url`, `events` or `label`): the URL must be https, or plain http only
    to 127.0.0.1 or localhost, without user:password@.
    """
    url = url.strip()
    problem = _webhook_url_problem(url)
    if problem:
        raise InvalidInputError(f'webhook_url {problem}, got "{hint_of(url)}"', field="webhook_url")
    chosen, name = _check_events(events), _check_label(label, default=WEBHOOK)
    secret = "whsec_" + secret_tokens.token_urlsafe(32)
    channel = _save_channel(session, settings, user_id, WEBHOOK, url, secret, chosen, name)
    return NewChannel(view(channel), secret)


def list_channels(session: Session, user_id: int) -> list[ChannelView]:
    channels = session.scalars(
        select(NotificationChannel).where(NotificationChannel.user_id == user_id).order_by(NotificationChannel.id)
    )
    return [view(channel) for channel in channels]


def remove_channel(session: Session, user_id: int, channel_id: int | str) -> ChannelView:
    """Delete the user's channel and its deliveries; `NotFoundError` when missing or someone else's. Caller commits."""
    channel = owned_channel(session, user_id, channel_id)
    removed = view(channel)
    for delivery in session.scalars(select(NotificationDelivery).where(NotificationDelivery.channel_id == channel.id)):
        session.delete(delivery)
    session.flush()  # before the channel: the database's own cascade would otherwise delete them first
    session.delete(channel)
    session.flush()
    return removed


@dataclass(frozen=True)
class ChannelSwitch:
    channel: ChannelView
    changed: bool  # False when it already was enabled (or disabled)
    dropped: int  # queued deliveries marked FAILED instead of being sent later


def disable_channel(session: Session, user_id: int, channel_id: int | str) -> ChannelSwitch:
    """Stop sending to one of the user's channels until it is enabled again. The caller commits.

    Events while it is disabled are not queued for it, and the deliveries still queued are marked FAILED (`dropped`):
    nothing is sent later. Raises `InvalidInputError` (field `channel_id`) for an id that is not a whole number and
    `NotFoundError` when the channel is missing or someone else's.
    """
    return _switch(session, user_id, channel_id, enabled=False)


def enable_channel(session: Session, user_id: int, channel_id: int | str) -> ChannelSwitch:
    """Send to a disabled channel again, from the next event on (what happened while it was disabled is never sent).

    The caller commits. Raises like `disable_channel`.
    """
    return _switch(session, user_id, channel_id, enabled=True)


def channel_id_of(raw: int | str) -> int:
    """A channel id as the user wrote it; `InvalidInputError` (field `channel_id`) unless a positive whole number."""
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise InvalidInputError(f'channel_id must be a positive whole number, got "{raw}"', field="channel_id")
    return int(text)


def view(channel: NotificationChannel) -> ChannelView:
    return ChannelView(
        id=channel.id,
        kind=channel.kind,
        label=channel.label,
        hint=channel.target_hint,
        events=tuple(channel.events or ()),
        enabled=channel.enabled,
        created_at=channel.created_at,
    )


def hint_of(url: str) -> str:
    """A URL as a user may see it: its scheme, then the rest masked (`tgram://12******wxyz`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isascii() or not scheme.replace("+", "").isalnum():
        return mask_secret(url)
    return f"{scheme}://{mask_secret(rest)}"


def _apprise_url_problem(url: str) -> str:
    """Why Apprise refuses `url`, naming its scheme and the service's documented form, never the rest of the URL."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme or not scheme.isascii() or not scheme.replace("+", "").isalnum():
        return "must be an Apprise URL such as tgram://{bot_token}/{targets} or mailto://{user}:{password}@{host}"
    service = apprise_service(scheme)
    if service is None:
        like = apprise_schemes_like(scheme)
        guess = f" (did you mean {' or '.join(f'{known}://' for known in like)}?)" if like else ""
        if scheme.lower() in ("http", "https"):
            return (
                f"is an {scheme.lower()}:// address Apprise matches to none of its services "
                "(json:// or jsons:// posts to any web address; webhook_url sends a signed JSON webhook)"
            )
        return f'has a scheme Apprise does not know: "{scheme}"{guess}'
    where = f" (see {service.setup_url})" if service.setup_url else ""
    if not service.available:
        return f"names Apprise's {service.name} service ({scheme}://), which is not available in this installation"
    form = f": the form is {service.form}" if service.form else ""
    return f"is a {service.name} URL (Apprise knows {scheme}://) but incomplete or invalid{form}{where}"


def _webhook_url_problem(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@)"
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        return "must use https (plain http only to 127.0.0.1 or localhost)"
    return ""


def _check_events(events: str | Sequence[str]) -> list[str]:
    """The events chosen, from a comma-separated value as typed or a list; no value at all (`()`) means every event,
    but a value that names none (`""`, `" , "`) is refused rather than taken for every event."""
    entries = events.split(",") if isinstance(events, str) else list(events)
    chosen: list[str] = []
    for raw in entries:
        event = raw.strip()
        if not event:
            continue
        if event not in EVENTS:
            raise InvalidInputError(f'events must be among {", ".join(EVENTS)}, got "{event}"', field="events")
        if event not in chosen:
            chosen.append(event)
    if entries and not chosen:
        written = events if isinstance(events, str) else ",".join(events)
        raise InvalidInputError(
            f'events must name at least one of {", ".join(EVENTS)} (leave it out for every event), got "{written}"',
            field="events",
            details={"value": written},
        )
    return chosen


def _check_label(label: str, default: str) -> str:
    label = label.strip() or default
    if len(label) > LABEL_MAX:
        raise InvalidInputError(f"label must be at most {LABEL_MAX} characters, got {len(label)}", field="label")
    return label


def _save_channel(
    session: Session,
    settings: Settings,
    user_id: int,
    kind: str,
    url: str,
    secret: str | None,
    events: list[str],
    label: str,
) -> NotificationChannel:
    secrets = vault(settings)
    channel = NotificationChannel(
        user_id=user_id,
        kind=kind,
        label=label,
        target_encrypted=secrets.encrypt(url),
        target_hint=hint_of(url)[:120],
        secret_encrypted=secrets.encrypt(secret) if secret else None,
        events=events,
        enabled=True,
    )
    session.add(channel)
    session.flush()
    return channel


def owned_channel(session: Session, user_id: int, channel_id: int | str) -> NotificationChannel:
    number = channel_id_of(channel_id)
    try:
        return owned(session, NotificationChannel, number, user_id)
    except NotFoundError:  # worded as users call it: `owned` knows accounts, watches, analyses and backtests
        raise NotFoundError(f"no notification channel #{number}", field="channel_id", details={"id": number}) from None


def _switch(session: Session, user_id: int, channel_id: int | str, *, enabled: bool) -> ChannelSwitch:
    channel = owned_channel(session, user_id, channel_id)
    changed = channel.enabled != enabled
    if not changed and enabled:
        return ChannelSwitch(view(channel), False, 0)
    channel.enabled = enabled
    # Also when enabling: a delivery queued by an event that raced the disable is dropped, never sent late.
    pending = session.scalars(
        select(NotificationDelivery).where(
            NotificationDelivery.channel_id == channel.id, NotificationDelivery.status == DeliveryStatus.PENDING
        )
    ).all()
    for delivery in pending:
        delivery.status, delivery.last_error = DeliveryStatus.FAILED, DISABLED_ERROR
    session.flush()
    return ChannelSwitch(view(channel), changed, len(pending))
