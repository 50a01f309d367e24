"""What the money and run paths tell a user's channels, on SQLite and PostgreSQL: fills, stop hits, failed runs
and budget crossings are queued in the outbox (sent later, off the path)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import BudgetLedgerEntry, LedgerStatus, NotificationDelivery
from app.services import notification_channels, usage, watch_runs
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.watch_runs import DueRun
from tests import factories

BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)


def subscribed(events=()):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    notification_channels.add_webhook_channel(
        db.session, current_settings(), user.id, "https://hooks.example.com/x", events
    )
    db.session.commit()
    return user, account


def queued():
    return [
        (d.event, d.payload) for d in db.session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id))
    ]


def analyse(user, account, until):
    request = AnalysisRequest(
        user_id=user.id,
        symbol="BTC/USDT",
        timeframe="1h",
        signals="rules:rsi_reversion",
        account_id=account.id,
        until=until,
        execute=True,
    )
    return run_analysis(
        db.session, current_settings(), request, signal_services(db.session, current_settings(), user.id)
    )


def test_a_fill_and_the_stop_that_closes_it_are_queued(app):
    user, account = subscribed()
    analyse(user, account, BUY_BAR)
    analyse(user, account, datetime(2024, 1, 12, 23, tzinfo=UTC))
    events = [event for event, _ in queued()]
    assert events == ["order.filled", "position.stop_hit", "order.filled", "order.filled"]
    _, fill = queued()[0]
    assert (fill["side"], fill["quantity"], fill["price"], fill["symbol"]) == ("buy", "0.00084", "43624", "BTC/USDT")


def test_a_channel_gets_only_the_events_it_subscribed_to(app):
    user, account = subscribed(events=["position.stop_hit"])
    analyse(user, account, BUY_BAR)
    analyse(user, account, datetime(2024, 1, 12, 23, tzinfo=UTC))
    assert [event for event, _ in queued()] == ["position.stop_hit"]


def test_a_failed_run_is_queued_with_its_step_and_reason(app):
    user, account = subscribed(events=["run.failed"])
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion")
    db.session.commit()
    after = datetime(2024, 10, 1, tzinfo=UTC)
    run = watch_runs.claim(db.session, DueRun(watch.id, after, "schedule"), after)
    watch_runs.execute_run(
        db.session, current_settings(), run.id, lambda s, u: signal_services(s, current_settings(), u), "store"
    )
    [(event, payload)] = queued()
    assert (event, payload["failed_step"], payload["error_code"]) == ("run.failed", "candles", "INVALID_INPUT")
    assert payload["message"].startswith("BTC/USDT 1h bar 2024-10-01 00:00 UTC failed at candles: until 2024-10-01")


def test_a_watch_failing_bar_after_bar_for_one_reason_is_told_once_per_streak(app):
    user, account = subscribed(events=["run.failed"])
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion")
    db.session.commit()

    def run_at(bar):
        run = watch_runs.claim(db.session, DueRun(watch.id, bar, "schedule"), bar)
        return watch_runs.execute_run(
            db.session, current_settings(), run.id, lambda s, u: signal_services(s, current_settings(), u), "store"
        )

    hour = timedelta(hours=1)
    after = datetime(2024, 10, 1, tzinfo=UTC)  # past the stored candles: INVALID_INPUT at candles, every bar
    for bar in (after, after + hour, after + 2 * hour):
        assert run_at(bar).error_code == "INVALID_INPUT"
    assert len(queued()) == 1  # the first of the streak only
    assert run_at(BUY_BAR).status.value == "succeeded"  # an earlier bar: it does not end the streak above
    assert run_at(after + 3 * hour).error_code == "INVALID_INPUT"
    assert len(queued()) == 1


def test_budget_crossings_are_told_once(app):
    user, _ = subscribed(events=["budget.threshold", "budget.exhausted"])
    user.daily_budget_usd, user.monthly_budget_usd = Decimal("1.00"), Decimal("100")
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    spend = [Decimal("0.70"), Decimal("0.15"), Decimal("0.05"), Decimal("0.20")]  # 0.70, 0.85, 0.90, 1.10
    told = []
    for i, cost in enumerate(spend):
        db.session.add(
            BudgetLedgerEntry(
                user_id=user.id,
                provider="deepseek",
                model="deepseek-flash",
                status=LedgerStatus.SETTLED,
                reserved_usd=cost,
                settled_usd=cost,
                created_at=now + timedelta(minutes=i),
            )
        )
        db.session.flush()
        told.append(usage.notify_budget_crossings(db.session, user, cost, now + timedelta(minutes=i)))
    assert told == [[], ["budget.threshold"], [], ["budget.exhausted"]]
