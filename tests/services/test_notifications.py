"""Notification channels and the outbox: signed webhooks, Apprise (json://, mailto://) to loopback fakes, retries
with backoff on a controllable clock, one failing channel never stopping another, masked validation errors."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.errors import InvalidInputError, NotFoundError
from app.extensions import db
from app.models import DeliveryStatus, NotificationChannel, NotificationDelivery
from app.services import notifications
from app.services.notification_channels import (
    DISABLED_ERROR,
    add_apprise_channel,
    add_webhook_channel,
    disable_channel,
    enable_channel,
    list_channels,
    remove_channel,
)
from app.services.notification_wire import OutgoingMessage, apprise_service, send_message
from app.services.notifications import MAX_ATTEMPTS, deliver_due, notify
from tests import factories
from tests.fakes.http_receiver import receiver_fixture  # noqa: F401
from tests.fakes.smtp_server import smtp_server_fixture  # noqa: F401

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FILL = {"symbol": "BTC/USDT", "side": "buy", "quantity": Decimal("0.0015"), "price": Decimal("64000.50")}


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """The recipe of the module docstring, as a receiver would write it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    signed = fields["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) <= tolerance
    return fresh and hmac.compare_digest(expected, fields["v1"])


@pytest.fixture
def user(app):
    return factories.user(db.session, password=None)


def deliveries():
    db.session.expire_all()
    return db.session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)).all()


def test_a_webhook_gets_a_signed_json_post_a_receiver_can_verify(app, user, receiver):
    added = add_webhook_channel(db.session, current_settings(), user.id, f"{receiver.url}/hooks/sh?key=abc123456")
    db.session.commit()
    assert notify(db.session, user.id, "order.filled", FILL) == 1
    db.session.commit()

    now = datetime.now(UTC)
    report = deliver_due(db.session, current_settings(), now)

    assert report.count(DeliveryStatus.SENT) == 1
    [request] = receiver.requests
    assert request.path == "/hooks/sh?key=abc123456"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-steadyhand-event"] == "order.filled"
    assert added.secret and verify(added.secret, request.body, request.headers["x-steadyhand-signature"])
    assert request.headers["x-steadyhand-signature"].startswith(f"t={int(now.timestamp())},v1=")
    assert not verify("whsec_wrong", request.body, request.headers["x-steadyhand-signature"])
    assert not verify(added.secret, request.body + b" ", request.headers["x-steadyhand-signature"])
    document = json.loads(request.body)
    assert document["event"] == "order.filled"
    assert document["payload"] == {"symbol": "BTC/USDT", "side": "buy", "quantity": "0.0015", "price": "64000.5"}
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.SENT, 1, None)
    assert delivery.sent_at == now.replace(microsecond=delivery.sent_at.microsecond)  # SQLite keeps microseconds
    assert str(document["id"]) == request.headers["x-steadyhand-delivery"] == str(delivery.id)


def test_apprise_json_reaches_the_local_receiver_with_the_event_text(app, user, receiver):
    add_apprise_channel(db.session, current_settings(), user.id, f"json://127.0.0.1:{receiver.port}/apprise")
    notify(db.session, user.id, "position.stop_hit", {"symbol": "ETH/USDT", "stop": Decimal("3100")}, now=T0)
    db.session.commit()

    report = deliver_due(db.session, current_settings(), T0)

    assert report.count(DeliveryStatus.SENT) == 1
    [request] = receiver.requests
    assert request.path == "/apprise"
    document = json.loads(request.body)
    assert document["title"] == "Steadyhand: Stop-loss hit"
    assert "position.stop_hit" in document["message"] and "stop: 3100" in document["message"]


def test_apprise_mailto_delivers_an_email_to_a_local_smtp_server(app, user, smtp_server):
    add_apprise_channel(db.session, current_settings(), user.id, smtp_server.mailto("trader@example.com"))
    notify(db.session, user.id, "budget.exhausted", {"cap_usd": Decimal("5"), "spent_usd": Decimal("5.01")}, now=T0)
    db.session.commit()

    assert deliver_due(db.session, current_settings(), T0).count(DeliveryStatus.SENT) == 1

    [message] = smtp_server.messages
    assert message["To"] == "trader@example.com"
    assert message["Subject"] == "Steadyhand: Budget exhausted"
    text = smtp_server.text_of(message)
    assert "budget.exhausted" in text and "spent_usd: 5.01" in text


def test_a_failed_send_is_retried_with_backoff_until_it_goes_through(app, user, receiver):
    add_webhook_channel(db.session, current_settings(), user.id, f"{receiver.url}/hook")
    notify(db.session, user.id, "run.failed", {"watch_id": 3, "reason": "exchange timeout"}, now=T0)
    db.session.commit()
    receiver.answer(500, 500)

    first = deliver_due(db.session, current_settings(), T0)
    [delivery] = deliveries()
    assert first.count(DeliveryStatus.PENDING) == 1
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)
    assert delivery.last_error == "the webhook answered HTTP 500"

    assert deliver_due(db.session, current_settings(), T0 + timedelta(seconds=29)).outcomes == ()
    deliver_due(db.session, current_settings(), T0 + timedelta(seconds=30))
    [delivery] = deliveries()
    assert delivery.attempts == 2 and delivery.next_attempt_at == T0 + timedelta(seconds=30 + 60)

    last = deliver_due(db.session, current_settings(), T0 + timedelta(seconds=90))
    [delivery] = deliveries()
    assert last.count(DeliveryStatus.SENT) == 1
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.SENT, 3, None)
    assert delivery.sent_at == T0 + timedelta(seconds=90)
    assert len(receiver.requests) == 3
    assert len({request.headers["x-steadyhand-delivery"] for request in receiver.requests}) == 1


def test_a_delivery_is_failed_after_the_last_attempt(app, user):
    add_webhook_channel(db.session, current_settings(), user.id, "https://hooks.example.com/in")
    notify(db.session, user.id, "budget.threshold", {"spent_percent": 80}, now=T0)
    db.session.commit()

    def down(message: OutgoingMessage) -> None:
        raise ConnectionError("connection refused")

    now, waits = T0, []
    for _ in range(MAX_ATTEMPTS):
        deliver_due(db.session, current_settings(), now, send=down)
        [delivery] = deliveries()
        if delivery.status == DeliveryStatus.PENDING:
            waits.append((delivery.next_attempt_at - now).total_seconds())
            now = delivery.next_attempt_at

    assert waits == [30, 60, 120, 240, 480]
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.FAILED,
        MAX_ATTEMPTS,
        "connection refused",
    )
    assert deliver_due(db.session, current_settings(), now + timedelta(days=1), send=down).outcomes == ()


def test_one_failing_channel_never_stops_another(app, user, receiver):
    add_webhook_channel(db.session, current_settings(), user.id, "https://broken.example.com/hook", label="broken")
    add_apprise_channel(db.session, current_settings(), user.id, f"json://127.0.0.1:{receiver.port}/ok", label="ok")
    notify(db.session, user.id, "account.trading_state", {"account_id": 1, "trading": "paused"}, now=T0)
    db.session.commit()

    def flaky(message: OutgoingMessage) -> None:
        if message.kind == "webhook":
            raise RuntimeError("boom")
        send_message(message)

    report = deliver_due(db.session, current_settings(), T0, send=flaky)

    assert [outcome.status for outcome in report.outcomes] == [DeliveryStatus.PENDING, DeliveryStatus.SENT]
    assert [(d.status, d.last_error) for d in deliveries()] == [
        (DeliveryStatus.PENDING, "boom"),
        (DeliveryStatus.SENT, None),
    ]
    assert len(receiver.requests) == 1


def test_notify_queues_only_for_enabled_subscribed_channels_and_never_sends(app, user):
    settings = current_settings()
    every = add_apprise_channel(db.session, settings, user.id, "json://hooks.example.com/all").channel
    fills = add_apprise_channel(db.session, settings, user.id, "json://hooks.example.com/f", ["order.filled"]).channel
    off = add_apprise_channel(db.session, settings, user.id, "json://hooks.example.com/off").channel
    db.session.get_one(NotificationChannel, off.id).enabled = False
    other = factories.user(db.session, password=None)
    add_apprise_channel(db.session, settings, other.id, "json://hooks.example.com/other")

    assert notify(db.session, user.id, "order.filled", {"order_id": 1}) == 2
    assert notify(db.session, user.id, "run.failed", {"watch_id": 2}) == 1
    assert [(d.channel_id, d.event, d.status) for d in deliveries()] == [
        (every.id, "order.filled", DeliveryStatus.PENDING),
        (fills.id, "order.filled", DeliveryStatus.PENDING),
        (every.id, "run.failed", DeliveryStatus.PENDING),
    ]
    with pytest.raises(InvalidInputError) as refused:
        notify(db.session, user.id, "order.filed", {})
    assert refused.value.field == "event"


def test_channel_urls_are_encrypted_at_rest_and_only_shown_masked(app, user):
    token = "123456789:AAE-secret-bot-token-zyxw"
    added = add_apprise_channel(db.session, current_settings(), user.id, f"tgram://{token}/987654321", label="phone")
    hook = add_webhook_channel(db.session, current_settings(), user.id, "https://example.com/in/tok-9f8e7d6c")

    stored = db.session.get_one(NotificationChannel, added.channel.id)
    assert token not in stored.target_encrypted and added.channel.hint == "tgram://12******4321"
    webhook = db.session.get_one(NotificationChannel, hook.channel.id)
    assert hook.secret and hook.secret.startswith("whsec_") and hook.secret not in (webhook.secret_encrypted or "")
    views = repr(list_channels(db.session, user.id))
    assert token not in views and "tok-9f8e7d6c" not in views and hook.secret not in views
    assert [view.label for view in list_channels(db.session, user.id)] == ["phone", "webhook"]


@pytest.mark.parametrize(
    ("add", "url", "events", "message", "field"),
    [
        (
            add_apprise_channel,
            "nonsense-token-123456",
            [],
            "apprise_url must be an Apprise URL such as tgram://{bot_token}/{targets} or "
            'mailto://{user}:{password}@{host}, got "no******3456"',
            "apprise_url",
        ),
        (
            add_apprise_channel,
            "tgram://abc",
            [],
            "apprise_url is a Telegram URL (Apprise knows tgram://) but incomplete or invalid: the form is "
            'tgram://{bot_token}/{targets} (see https://appriseit.com/services/telegram/), got "tgram://***"',
            "apprise_url",
        ),
        (
            add_apprise_channel,
            "tgramm://123456789:AAE-secret-bot-token-zyxw/987",
            [],
            'apprise_url has a scheme Apprise does not know: "tgramm" (did you mean tgram:// or instagram:// or '
            'pingram://?), got "tgramm://12******/987"',
            "apprise_url",
        ),
        (
            add_apprise_channel,
            "https://example.com/in?token=abcdef",
            [],
            "apprise_url is an https:// address Apprise matches to none of its services (json:// or jsons:// posts "
            'to any web address; webhook_url sends a signed JSON webhook), got "https://ex******cdef"',
            "apprise_url",
        ),
        (
            add_webhook_channel,
            "http://example.com/hook?token=abcdef",
            [],
            'webhook_url must use https (plain http only to 127.0.0.1 or localhost), got "http://ex******cdef"',
            "webhook_url",
        ),
        (
            add_webhook_channel,
            "https://user:hunter22@example.com/hook",
            [],
            'webhook_url must not carry credentials (user:password@), got "https://us******hook"',
            "webhook_url",
        ),
        (
            add_webhook_channel,
            "ftp://example.com/drop",
            [],
            'webhook_url must be an https:// URL with a host, got "ftp://ex******drop"',
            "webhook_url",
        ),
        (
            add_webhook_channel,
            "https://example.com/hook",
            ["order.filled", "order.fill"],
            "events must be among order.filled, position.stop_hit, position.take_profit_hit, account.trading_state, "
            'budget.threshold, budget.exhausted, run.failed, got "order.fill"',
            "events",
        ),
        (
            add_webhook_channel,
            "https://example.com/hook",
            "",
            "events must name at least one of order.filled, position.stop_hit, position.take_profit_hit, "
            "account.trading_state, budget.threshold, budget.exhausted, run.failed (leave it out for every event), "
            'got ""',
            "events",
        ),
        (
            add_apprise_channel,
            "json://hooks.example.com/x",
            [" ", ""],
            "events must name at least one of order.filled, position.stop_hit, position.take_profit_hit, "
            "account.trading_state, budget.threshold, budget.exhausted, run.failed (leave it out for every event), "
            'got " ,"',
            "events",
        ),
    ],
)
def test_a_channel_is_validated_with_one_line_naming_the_field_and_a_masked_value(
    app, user, add, url, events, message, field
):
    with pytest.raises(InvalidInputError) as refused:
        add(db.session, current_settings(), user.id, url, events)
    assert (refused.value.message, refused.value.field) == (message, field)
    assert "secret" not in refused.value.message and "abcdef" not in refused.value.message  # no token echoed
    assert db.session.scalars(select(NotificationChannel)).all() == []


def test_events_left_out_mean_every_event_and_a_typed_list_is_split_on_commas(app, user):
    settings = current_settings()
    every = add_webhook_channel(db.session, settings, user.id, "https://example.com/a").channel
    typed = add_webhook_channel(db.session, settings, user.id, "https://example.com/b", " order.filled, run.failed,")
    assert every.events == ()
    assert typed.channel.events == ("order.filled", "run.failed")


def test_every_apprise_scheme_the_cli_help_names_is_known_with_a_documented_form():
    for scheme, name in (("tgram", "Telegram"), ("slack", "Slack"), ("discord", "Discord"), ("mailto", "E-Mail")):
        service = apprise_service(scheme)
        assert service is not None and service.name == name and service.form.startswith(f"{scheme}://{{")
    assert apprise_service("TGRAM") == apprise_service("tgram")
    assert apprise_service("nope") is None


def test_a_channel_is_removed_only_by_its_owner_with_its_deliveries(app, user):
    added = add_apprise_channel(db.session, current_settings(), user.id, "json://hooks.example.com/x")
    notify(db.session, user.id, "order.filled", {"order_id": 1})
    stranger = factories.user(db.session, password=None)

    with pytest.raises(NotFoundError) as refused:
        remove_channel(db.session, stranger.id, added.channel.id)
    assert refused.value.message == f"no notification channel #{added.channel.id}"

    remove_channel(db.session, user.id, added.channel.id)
    db.session.commit()
    assert deliveries() == [] and list_channels(db.session, user.id) == []


def test_an_apprise_failure_is_recorded_without_the_urls_tokens(app, user):
    add_apprise_channel(db.session, current_settings(), user.id, "json://127.0.0.1:9/secret-path-token-42")
    notify(db.session, user.id, "order.filled", {"order_id": 1}, now=T0)
    db.session.commit()

    report = deliver_due(db.session, current_settings(), T0)

    [outcome] = report.outcomes
    assert outcome.status == DeliveryStatus.PENDING and outcome.error
    assert "secret-path-token-42" not in outcome.error
    assert notifications.backoff(1) == timedelta(seconds=30) and notifications.backoff(20) == timedelta(hours=1)


def test_a_disabled_channel_gets_nothing_then_or_later_and_an_enabled_one_gets_what_follows(app, user, receiver):
    settings = current_settings()
    paused = add_webhook_channel(db.session, settings, user.id, f"{receiver.url}/paused").channel
    other = add_webhook_channel(db.session, settings, user.id, f"{receiver.url}/other").channel
    notify(db.session, user.id, "order.filled", {"order_id": 1}, now=T0)  # queued before the disable

    off = disable_channel(db.session, user.id, paused.id)
    notify(db.session, user.id, "order.filled", {"order_id": 2}, now=T0)  # while disabled
    db.session.commit()

    assert (off.changed, off.dropped, off.channel.enabled) == (True, 1, False)
    assert [(view.id, view.enabled) for view in list_channels(db.session, user.id)] == [
        (paused.id, False),
        (other.id, True),
    ]
    deliver_due(db.session, settings, T0)
    assert [request.path for request in receiver.requests] == ["/other", "/other"]

    on = enable_channel(db.session, user.id, str(paused.id))
    db.session.commit()
    assert (on.changed, on.dropped, on.channel.enabled) == (True, 0, True)
    deliver_due(db.session, settings, T0 + timedelta(hours=2))
    assert len(receiver.requests) == 2  # neither the event queued before the disable nor the one during it
    dropped = [d for d in deliveries() if d.channel_id == paused.id]
    assert [(d.payload["order_id"], d.status, d.last_error) for d in dropped] == [
        (1, DeliveryStatus.FAILED, DISABLED_ERROR)
    ]

    notify(db.session, user.id, "run.failed", {"watch_id": 4}, now=T0 + timedelta(hours=3))
    db.session.commit()
    deliver_due(db.session, settings, T0 + timedelta(hours=3))
    assert sorted(request.path for request in receiver.requests[2:]) == ["/other", "/paused"]


def test_switching_a_channel_to_its_state_again_changes_nothing(app, user):
    added = add_apprise_channel(db.session, current_settings(), user.id, "json://hooks.example.com/x").channel
    notify(db.session, user.id, "order.filled", {"order_id": 1})

    again = enable_channel(db.session, user.id, added.id)
    assert (again.changed, again.dropped) == (False, 0)
    assert [d.status for d in deliveries()] == [DeliveryStatus.PENDING]  # an enabled channel's queue is kept

    disable_channel(db.session, user.id, added.id)
    twice = disable_channel(db.session, user.id, added.id)
    assert (twice.changed, twice.dropped, twice.channel.enabled) == (False, 0, False)


@pytest.mark.parametrize("switch", [disable_channel, enable_channel])
def test_only_the_owner_switches_a_channel_and_a_bad_id_names_the_field_and_value(app, user, switch):
    added = add_apprise_channel(db.session, current_settings(), user.id, "json://hooks.example.com/x").channel
    stranger = factories.user(db.session, password=None)
    disable = disable_channel(db.session, user.id, added.id) if switch is enable_channel else None

    with pytest.raises(NotFoundError) as refused:
        switch(db.session, stranger.id, added.id)
    assert (refused.value.message, refused.value.field) == (f"no notification channel #{added.id}", "channel_id")
    with pytest.raises(NotFoundError):
        switch(db.session, user.id, added.id + 1000)
    for raw in ("abc", "-1", "0", "1.5", ""):
        with pytest.raises(InvalidInputError) as bad:
            switch(db.session, user.id, raw)
        assert (bad.value.message, bad.value.field) == (
            f'channel_id must be a positive whole number, got "{raw}"',
            "channel_id",
        )
    db.session.expire_all()
    stored = db.session.get_one(NotificationChannel, added.id)
    assert stored.enabled is (disable is None)
