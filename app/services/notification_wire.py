"""The wire formats of notifications: the signed JSON webhook and Apprise's plain-text messages, and sending one.

Verifying a webhook
-------------------
Each webhook request is a `POST` with a JSON body (`{"id", "event", "created_at", "payload"}`) and the headers
`X-Steadyhand-Event: <event>`, `X-Steadyhand-Delivery: <id>` and
`X-Steadyhand-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the channel's secret>`.
A receiver checks it against the raw body bytes, before parsing them::

    import hashlib, hmac, time

    def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(","))
        signed = fields["t"].encode() + b"." + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(fields["t"])) <= tolerance   # refuses replays of old requests
        return fresh and hmac.compare_digest(expected, fields["v1"])

A retried delivery is signed again with a new `t`; `X-Steadyhand-Delivery` stays the same, so a receiver can drop
duplicates. Answer any 2xx to acknowledge; anything else (or no answer within 10 s) is retried.
"""

import difflib
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apprise
from apprise.manager_plugins import NotificationManager

from app.errors import shown

APPRISE, WEBHOOK = "apprise", "webhook"
EVENTS = (
    "order.filled",
    "position.stop_hit",
    "position.take_profit_hit",
    "account.trading_state",
    "budget.threshold",
    "budget.exhausted",
    "run.failed",
)
# What `budget.threshold` means: this share of a budget cap has been spent.
BUDGET_THRESHOLD_PERCENT = 80
# Sent only by `send_test`, to every channel whatever it subscribes to.
TEST_EVENT = "notification.test"
EVENT_TITLES = {
    "order.filled": "Order filled",
    "position.stop_hit": "Stop-loss hit",
    "position.take_profit_hit": "Take-profit hit",
    "account.trading_state": "Trading paused or resumed",
    "budget.threshold": f"{BUDGET_THRESHOLD_PERCENT}% of a budget spent",
    "budget.exhausted": "Budget exhausted",
    "run.failed": "A run failed",
    TEST_EVENT: "Test notification",
}
SEND_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class OutgoingMessage:
    """One delivery, decrypted, ready to send."""

    delivery_id: int
    kind: str
    target: str
    secret: str | None
    event: str
    payload: dict[str, Any]
    created_at: datetime
    now: datetime


class DeliveryError(Exception):
    """A send that did not go through; its message is stored as the delivery's `last_error` (never a secret)."""


Sender = Callable[[OutgoingMessage], None]


def send_message(message: OutgoingMessage) -> None:
    """Send one delivery through its channel; raises `DeliveryError` saying why it did not go through."""
    if message.kind == WEBHOOK:
        _post_webhook(message)
    else:
        _send_apprise(message)


def webhook_body(message: OutgoingMessage) -> bytes:
    document = {
        "id": message.delivery_id,
        "event": message.event,
        "created_at": message.created_at.isoformat(),
        "payload": message.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` keyed with `secret`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def message_text(event: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    """The title and plain-text body a person reads (Apprise channels)."""
    title = f"Steadyhand: {EVENT_TITLES.get(event, event)}"
    lines = [f"{event}"] + [f"{key}: {shown(value)}" for key, value in payload.items()]
    return title, "\n".join(lines)


def _post_webhook(message: OutgoingMessage) -> None:
    if not message.secret:
        raise DeliveryError("the webhook has no signing secret")
    body = webhook_body(message)
    # The scheme was checked when the channel was added: https, or http to this machine only.
    request = urllib.request.Request(  # noqa: S310
        message.target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Steadyhand-Webhook/1",
            "X-Steadyhand-Event": message.event,
            "X-Steadyhand-Delivery": str(message.delivery_id),
            "X-Steadyhand-Signature": signature_header(message.secret, body, int(message.now.timestamp())),
        },
    )
    try:
        with _no_redirects.open(request, timeout=SEND_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"the webhook answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"the webhook could not be reached: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"the webhook answered HTTP {status}")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A signed body goes to the URL the user gave, never where a redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_no_redirects = urllib.request.build_opener(_RefuseRedirects)


def _send_apprise(message: OutgoingMessage) -> None:
    notifier = apprise.Apprise()
    with _quiet_apprise():
        if not notifier.add(message.target):
            raise DeliveryError("Apprise no longer recognises the channel's URL")
        title, body = message_text(message.event, message.payload)
        result = notifier.notify(body=body, title=title, timeout=SEND_TIMEOUT_SECONDS * 3, log_level=logging.WARNING)
    if not result:
        said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        raise DeliveryError("; ".join(said) or f"Apprise could not send it ({result.status.name.lower()})")


_apprise_log_lock = threading.Lock()


@contextmanager
def _quiet_apprise() -> Iterator[None]:
    """Apprise logs a URL it does not recognise in full (tokens and all): keep its log out of ours meanwhile."""
    logger = logging.getLogger("apprise")
    with _apprise_log_lock:
        before = logger.disabled
        logger.disabled = True
        try:
            yield
        finally:
            logger.disabled = before


def apprise_accepts(url: str) -> bool:
    """Whether Apprise recognises `url` as one of its services (checked without logging the URL)."""
    with _quiet_apprise():
        return bool(apprise.Apprise().add(url))


@dataclass(frozen=True)
class AppriseService:
    """What Apprise documents about the service behind one URL scheme."""

    name: str  # "Telegram"
    form: str  # its fullest documented URL form, written with the scheme given: "tgram://{bot_token}/{targets}"
    setup_url: str  # Apprise's page on setting it up; "" when it names none
    available: bool  # False when a library the service needs is not installed


def _apprise_plugins() -> Any:
    """Apprise's registry of services by scheme (a process-wide singleton, its plugins loaded on first use)."""
    return NotificationManager()  # type: ignore[no-untyped-call]


def apprise_service(scheme: str) -> AppriseService | None:
    """The Apprise service a URL scheme (`tgram`, any case) names, or None when Apprise knows no such scheme."""
    scheme = scheme.lower()
    plugins = _apprise_plugins()
    if not scheme or scheme not in plugins:
        return None
    plugin: Any = plugins[scheme]
    # The form with the most fields (ties: the first listed) shows every part a complete URL can carry.
    templates = [str(template) for template in getattr(plugin, "templates", ())]
    form = max(templates, key=lambda template: template.count("{"), default="")
    return AppriseService(
        name=str(getattr(plugin, "service_name", scheme)),
        form=form.replace("{schema}", scheme),
        setup_url=str(getattr(plugin, "setup_url", "") or getattr(plugin, "service_url", "") or ""),
        available=bool(getattr(plugin, "enabled", True)),
    )


def apprise_schemes_like(scheme: str) -> list[str]:
    """Up to three schemes Apprise knows that look like `scheme` (a typo's likely meaning), closest first."""
    known = _apprise_plugins().schemas(include_disabled=False)
    return difflib.get_close_matches(scheme.lower(), known, n=3, cutoff=0.6)
