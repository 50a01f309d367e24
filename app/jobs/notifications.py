"""Sending what the notification outbox holds, off every run's path: the scheduler calls `send_due` every few
seconds (see `app.services.notifications` for retries, backoff and the webhook signature)."""

import logging

from flask import Flask

from app import SETTINGS_EXTENSION
from app.extensions import db, db_session
from app.models import DeliveryStatus
from app.services import Clock, system_clock
from app.services.notification_wire import Sender
from app.services.notifications import DeliveryReport, deliver_due

log = logging.getLogger(__name__)


class NotificationSender:
    """One pass over the due deliveries, in its own app context and session; the clock and sender are injectable."""

    def __init__(self, app: Flask, clock: Clock = system_clock, send: Sender | None = None) -> None:
        self.app, self.clock, self.send = app, clock, send

    def __call__(self) -> DeliveryReport:
        with self.app.app_context():
            try:
                report = deliver_due(db_session(), self.app.extensions[SETTINGS_EXTENSION], self.clock(), self.send)
            finally:
                db.session.remove()
        if report.outcomes:
            log.info(
                "notifications delivered",
                extra={status.value: report.count(status) for status in DeliveryStatus},
            )
        return report


def send_due(app: Flask) -> DeliveryReport:
    """What the scheduler runs: send every delivery due now."""
    return NotificationSender(app)()
