"""`/metrics`: the Prometheus text format, read from the database on each scrape, with exact values for seeded
rows and nothing of any one user's."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from app.extensions import db
from app.models import NotificationChannel, NotificationDelivery, Order, SchedulerLease, WatchRun
from app.models.enums import DeliveryStatus, RunStatus
from exchanges.orders import OrderSide, OrderStatus, OrderType
from tests import factories


def scrape(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.get_data(as_text=True)
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def seed(now):
    user = factories.user(db.session, email="private-person@example.com")
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account)

    def run(hour, status, seconds=None, ago=timedelta(minutes=5)):
        finished = now - ago if seconds is not None else None
        started = finished - timedelta(seconds=seconds) if finished is not None else None
        db.session.add(
            WatchRun(
                watch_id=watch.id,
                bar_time=datetime(2024, 3, 1, hour, tzinfo=UTC),
                trigger="schedule",
                status=status,
                started_at=started,
                finished_at=finished,
            )
        )

    run(1, RunStatus.SUCCEEDED, 3)
    run(2, RunStatus.SUCCEEDED, 40)
    run(3, RunStatus.FAILED, 1)
    run(4, RunStatus.SUCCEEDED, 7, ago=timedelta(days=2))  # outside the 24-hour latency window
    run(5, RunStatus.QUEUED)

    for provider, model, cost in (
        ("deepseek", "deepseek-chat", "0.0012"),
        ("deepseek", "deepseek-chat", "0.0003"),
        ("claude", "claude-haiku", "0.01"),
        ("rules", "sma_cross", "0"),
    ):
        factories.analysis(db.session, user, provider=provider, model=model, cost_usd=Decimal(cost))

    for side, status in (
        (OrderSide.BUY, OrderStatus.CLOSED),
        (OrderSide.BUY, OrderStatus.CLOSED),
        (OrderSide.SELL, OrderStatus.OPEN),
    ):
        db.session.add(
            Order(
                account_id=account.id,
                client_order_id=f"c{factories.sequence()}",
                symbol="BTC/USDT",
                side=side,
                order_type=OrderType.MARKET,
                status=status,
                quantity=Decimal("0.001"),
            )
        )

    channel = NotificationChannel(
        user_id=user.id, kind="webhook", label="hook", target_encrypted="x", target_hint="https://…/hook"
    )
    db.session.add(channel)
    db.session.flush()
    for status in (DeliveryStatus.PENDING, DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.SENT):
        db.session.add(NotificationDelivery(channel_id=channel.id, event="order.filled", payload={}, status=status))
    db.session.commit()


def test_metrics_have_exact_values_for_seeded_rows(client):
    now = datetime.now(UTC)
    seed(now)
    db.session.add(
        SchedulerLease(
            name="scheduler",
            holder="scheduler@host:42",
            acquired_at=now,
            renewed_at=now,
            expires_at=now + timedelta(minutes=1),
        )
    )
    db.session.commit()

    text, samples = scrape(client)

    assert value(samples, "steadyhand_watch_runs_finished_total", status="succeeded") == 3
    assert value(samples, "steadyhand_watch_runs_finished_total", status="failed") == 1
    assert value(samples, "steadyhand_watch_runs_active", status="queued") == 1
    assert value(samples, "steadyhand_watch_runs_active", status="running") == 0

    duration = "steadyhand_watch_run_duration_seconds"
    assert value(samples, f"{duration}_count") == 3
    assert abs(value(samples, f"{duration}_sum") - 44) < 1e-6
    assert value(samples, f"{duration}_bucket", le="1.0") == 1
    assert value(samples, f"{duration}_bucket", le="5.0") == 2
    assert value(samples, f"{duration}_bucket", le="30.0") == 2
    assert value(samples, f"{duration}_bucket", le="60.0") == 3
    assert value(samples, f"{duration}_bucket", le="+Inf") == 3

    spend = "steadyhand_llm_spend_usd_total"
    assert value(samples, spend, provider="deepseek", model="deepseek-chat") == 0.0015
    assert value(samples, spend, provider="claude", model="claude-haiku") == 0.01
    assert value(samples, spend, provider="rules", model="sma_cross") == 0
    assert value(samples, "steadyhand_analyses_total", provider="deepseek", model="deepseek-chat") == 2

    assert value(samples, "steadyhand_orders", status="closed", side="buy") == 2
    assert value(samples, "steadyhand_orders", status="open", side="sell") == 1
    assert value(samples, "steadyhand_orders", status="open", side="buy") == 0

    assert value(samples, "steadyhand_scheduler_leader", holder="scheduler@host:42") == 1
    assert value(samples, "steadyhand_notification_outbox", status="pending") == 2
    assert value(samples, "steadyhand_notification_outbox", status="failed") == 1

    assert "private-person" not in text and "https://" not in text  # aggregates only


def test_an_expired_or_missing_lease_means_no_leader(client):
    _, samples = scrape(client)
    assert value(samples, "steadyhand_scheduler_leader", holder="") == 0

    past = datetime.now(UTC) - timedelta(minutes=5)
    db.session.add(
        SchedulerLease(name="scheduler", holder="scheduler@gone:1", acquired_at=past, renewed_at=past, expires_at=past)
    )
    db.session.commit()
    _, samples = scrape(client)
    assert value(samples, "steadyhand_scheduler_leader", holder="") == 0
    assert value(samples, "steadyhand_watch_run_duration_seconds_count") == 0
