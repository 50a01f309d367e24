"""`/metrics`: the Prometheus text format, read from the database on each scrape, with exact values for seeded
rows and nothing of any one user's."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.extensions import db
from app.models import Analysis, NotificationChannel, NotificationDelivery, Order, SchedulerLease, User, Watch, WatchRun
from app.models.enums import DeliveryStatus, RunStatus
from app.services import watches
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


def types(text):
    return {family.name: family.type for family in text_string_to_metric_families(text)}


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

    assert value(samples, "steadyhand_watch_runs_finished", status="succeeded") == 3
    assert value(samples, "steadyhand_watch_runs_finished", status="failed") == 1
    assert value(samples, "steadyhand_watch_runs_active", status="queued") == 1
    assert value(samples, "steadyhand_watch_runs_active", status="running") == 0

    duration = "steadyhand_watch_run_duration_last_24h_runs"
    assert abs(value(samples, "steadyhand_watch_run_duration_last_24h_seconds") - 44) < 1e-6
    assert value(samples, duration, le="1.0") == 1
    assert value(samples, duration, le="5.0") == 2
    assert value(samples, duration, le="30.0") == 2
    assert value(samples, duration, le="60.0") == 3
    assert value(samples, duration, le="+Inf") == 3

    spend = "steadyhand_llm_spend_usd"
    assert value(samples, spend, provider="deepseek", model="deepseek-chat") == 0.0015
    assert value(samples, spend, provider="claude", model="claude-haiku") == 0.01
    assert value(samples, spend, provider="rules", model="sma_cross") == 0
    assert value(samples, "steadyhand_analyses", provider="deepseek", model="deepseek-chat") == 2

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
    assert value(samples, "steadyhand_watch_run_duration_last_24h_runs", le="+Inf") == 0


EXPECTED_TYPES = {
    "steadyhand_watch_runs_finished": "gauge",
    "steadyhand_watch_runs_active": "gauge",
    "steadyhand_watch_run_duration_last_24h_runs": "gauge",
    "steadyhand_watch_run_duration_last_24h_seconds": "gauge",
    "steadyhand_llm_spend_usd": "gauge",
    "steadyhand_analyses": "gauge",
    "steadyhand_orders": "gauge",
    "steadyhand_scheduler_leader": "gauge",
    "steadyhand_notification_outbox": "gauge",
}


def test_every_metric_has_its_declared_type(client):
    seed(datetime.now(UTC))
    text, _ = scrape(client)

    assert types(text) == EXPECTED_TYPES
    for name, kind in EXPECTED_TYPES.items():
        assert f"# TYPE {name} {kind}\n" in text
    assert "_total" not in text  # no gauge wears a counter's suffix


def monotonic_samples(text):
    """The samples Prometheus requires never to decrease: counters, and histograms' buckets and counts."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.type == "counter" or (family.type == "histogram" and sample.name.endswith(("_bucket", "_count"))):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_deleting_a_watch_or_a_user_never_decreases_a_counter(client):
    now = datetime.now(UTC)
    seed(now)
    user = db.session.scalars(select(Analysis.user_id)).first()
    watch = db.session.scalars(select(Watch).where(Watch.user_id == user)).one()
    before_text, before = scrape(client)
    counters_before = monotonic_samples(before_text)

    watches.delete_watch(db.session, user, watch.id)
    db.session.commit()
    after_text, after = scrape(client)
    # the figures do fall, which is why none of them is a counter
    assert value(before, "steadyhand_watch_runs_finished", status="succeeded") == 3
    assert value(after, "steadyhand_watch_runs_finished", status="succeeded") == 0
    assert value(after, "steadyhand_watch_run_duration_last_24h_runs", le="+Inf") == 0

    db.session.delete(db.session.get(User, user))
    db.session.commit()
    last_text, last = scrape(client)
    assert not any(name in ("steadyhand_analyses", "steadyhand_llm_spend_usd") for name, _ in last)  # all gone

    for earlier, later in ((before_text, after_text), (after_text, last_text)):
        counters_earlier, counters_later = monotonic_samples(earlier), monotonic_samples(later)
        for key, count in counters_earlier.items():
            assert counters_later.get(key, 0) >= count, key
    assert counters_before == {}  # nothing derived from deletable rows claims to be a counter
