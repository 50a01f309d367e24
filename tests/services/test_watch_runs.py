"""Watch runs on SQLite and PostgreSQL with a controllable clock: due on the candle close (plus the settle delay),
one run per (watch, bar) whatever triggers it, catch-up with the latest bar only, steps and the failing step."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import requests
import responses
from sqlalchemy import func, select

from app import current_settings
from app.extensions import db
from app.models import Analysis, Order, RunStatus, Watch, WatchRun
from app.services import run_history, watch_runs
from app.services.credentials import signal_services
from app.services.replay import replay_market
from app.services.watch_runs import DueRun
from tests import factories

SETTLE = timedelta(seconds=5)
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)  # rules:rsi_reversion BUYs BTC/USDT here (entry 43,624.00)


def services_for(session, user_id):
    return signal_services(session, current_settings(), user_id)


def trader(auto_execute=False, **fields):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(
        db.session, user, account, signal_source="rules:rsi_reversion", auto_execute=auto_execute, **fields
    )
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, account, watch


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_watch_is_due_once_its_candle_has_closed_and_settled(app):
    _, _, watch = trader()
    # 17:00:04: the 16:00 bar closed 4 s ago, inside the settle delay: the latest settled bar is 15:00.
    [due] = watch_runs.due_runs(db.session, datetime(2024, 1, 12, 17, 0, 4, tzinfo=UTC), SETTLE)
    assert due == DueRun(watch.id, datetime(2024, 1, 12, 15, tzinfo=UTC), "schedule")
    [due] = watch_runs.due_runs(db.session, datetime(2024, 1, 12, 17, 0, 5, tzinfo=UTC), SETTLE)
    assert due.bar_time == BUY_BAR


def test_a_bar_is_claimed_once_whoever_triggers_it(app):
    _, _, watch = trader()
    due = DueRun(watch.id, BUY_BAR, "schedule")
    now = datetime(2024, 1, 12, 17, 0, 5, tzinfo=UTC)
    first = watch_runs.claim(db.session, due, now, "a:1")
    assert first is not None and first.status is RunStatus.QUEUED
    assert watch_runs.claim(db.session, due, now, "b:2") is None  # a second scheduler, a restart, a double trigger
    assert watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "manual"), now, "c:3") is None
    assert count(WatchRun) == 1
    assert watch_runs.due_runs(db.session, now, SETTLE) == []  # nothing left to do for this bar


def test_after_downtime_only_the_latest_closed_bar_runs(app):
    _, _, watch = trader()
    ran = watch_runs.claim(db.session, DueRun(watch.id, datetime(2024, 1, 12, 10, tzinfo=UTC), "schedule"), BUY_BAR)
    ran.status = RunStatus.SUCCEEDED
    db.session.commit()
    [due] = watch_runs.due_runs(db.session, datetime(2024, 1, 12, 17, 0, 5, tzinfo=UTC), SETTLE)
    assert due == DueRun(watch.id, BUY_BAR, "catch_up")  # 11:00-15:00 are not paid for


def test_a_watch_whose_run_is_still_in_flight_gets_no_new_run_until_it_finishes(app):
    _, _, watch = trader()
    slow = watch_runs.claim(db.session, DueRun(watch.id, datetime(2024, 1, 12, 10, tzinfo=UTC), "schedule"), BUY_BAR)
    for status in (RunStatus.QUEUED, RunStatus.RUNNING):
        slow.status = status
        db.session.commit()
        assert watch_runs.due_runs(db.session, datetime(2024, 1, 12, 17, 0, 5, tzinfo=UTC), SETTLE) == []
    slow.status = RunStatus.FAILED
    db.session.commit()
    [due] = watch_runs.due_runs(db.session, datetime(2024, 1, 12, 17, 0, 5, tzinfo=UTC), SETTLE)
    assert due == DueRun(watch.id, BUY_BAR, "catch_up")


def test_a_paused_watch_is_not_due(app):
    _, _, watch = trader()
    watch.enabled = False
    db.session.commit()
    assert watch_runs.due_runs(db.session, datetime(2024, 1, 12, 17, 0, 5, tzinfo=UTC), SETTLE) == []


def test_an_auto_executing_run_records_its_steps_analysis_and_order(app):
    _, account, watch = trader(auto_execute=True)
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    finished = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "store")

    assert (finished.status, finished.failed_step, finished.error_code) == (RunStatus.SUCCEEDED, None, None)
    assert [step["step"] for step in finished.steps] == ["candles", "context", "signal", "signal_status", "trade"]
    assert all(step["outcome"] == "ok" for step in finished.steps if step["step"] != "signal_status")
    assert finished.steps[3]["outcome"] == "ok BUY"
    analysis = db.session.get(Analysis, finished.analysis_id)
    assert (analysis.watch_id, analysis.bar_time) == (watch.id, BUY_BAR)
    order = db.session.get(Order, finished.order_id)
    assert (order.account_id, order.quantity) == (account.id, Decimal("0.00084"))


def test_advice_only_is_the_default_and_places_no_order(app):
    _, _, watch = trader()
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    finished = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "store")
    assert finished.status is RunStatus.SUCCEEDED and finished.order_id is None and count(Order) == 0


def test_a_failing_step_is_named_with_a_readable_reason_and_the_next_bar_runs(app):
    _, _, watch = trader()
    after_data = datetime(2024, 10, 1, tzinfo=UTC)
    run = watch_runs.claim(db.session, DueRun(watch.id, after_data, "schedule"), after_data + timedelta(hours=1))
    failed = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "store")
    assert (failed.status, failed.failed_step, failed.error_code) == (RunStatus.FAILED, "candles", "INVALID_INPUT")
    assert failed.error_message.startswith("until 2024-10-01 00:00 UTC is after the stored BTC/USDT 1h candles")
    assert count(Analysis) == 0

    later = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR)
    assert later is not None  # another bar: claimed and run normally
    assert watch_runs.execute_run(db.session, current_settings(), later.id, services_for, "store").status is (
        RunStatus.SUCCEEDED
    )


def test_run_now_twice_is_one_run_and_one_analysis(app):
    user, _, watch = trader()

    def market_now():
        return BUY_BAR + timedelta(hours=1, seconds=30)

    first = watch_runs.run_now(db.session, current_settings(), user.id, watch.id, services_for, "store", market_now)
    again = watch_runs.run_now(db.session, current_settings(), user.id, watch.id, services_for, "store", market_now)
    assert first.id == again.id and first.trigger == "manual" and count(Analysis) == 1


def test_a_run_still_running_past_its_timeout_is_failed_and_a_late_finish_keeps_that(app):
    _, _, watch = trader()
    now = BUY_BAR + timedelta(hours=1)
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), now, "a:1")
    run.status, run.started_at = RunStatus.RUNNING, now
    db.session.commit()
    assert watch_runs.fail_stalled(db.session, now + timedelta(seconds=121), timedelta(seconds=120)) == [run.id]
    db.session.expire_all()
    stalled = db.session.get(WatchRun, run.id)
    assert (stalled.status, stalled.error_code) == (RunStatus.FAILED, "RUN_TIMEOUT")
    assert db.session.get(Watch, watch.id).last_bar_at == BUY_BAR  # never claimed again


def test_a_run_reads_as_one_line_with_its_signal_decision_and_order(app):
    _, _, watch = trader(auto_execute=True)
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    finished = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "store")
    order = db.session.get(Order, finished.order_id)
    assert run_history.run_summary(db.session, run.id) == (
        f"run #{run.id} watch #{watch.id} BTC/USDT 1h rules:rsi_reversion bar 2024-01-12 16:00 UTC: "
        "BUY (confidence 62); approved (APPROVED, SIZED); "
        f"order {order.client_order_id} buy 0.00084 at 43624 [closed]"
    )


def test_a_live_accounts_watch_never_reads_the_replay(app):
    user = factories.user(db.session)
    live = factories.live_account(db.session, user, label="main")
    watch = factories.watch(db.session, user, live, signal_source="rules:rsi_reversion", auto_execute=True)
    db.session.commit()
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    with responses.RequestsMock() as exchange:
        exchange.get(re.compile(r"https://api\.binance\.com/api/v3/klines.*"), body=requests.ConnectionError("down"))
        failed = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "replay")
        assert len(exchange.calls) >= 1  # asked Binance, the account's own exchange, for its candles
    assert (failed.status, failed.failed_step, failed.error_code) == (
        RunStatus.FAILED,
        "candles",
        "MARKET_DATA_UNAVAILABLE",
    )
    assert count(Order) == 0 and count(Analysis) == 0


def test_a_live_accounts_candles_come_through_its_own_base_url(app):
    user = factories.user(db.session)
    live = factories.live_account(
        db.session, user, label="main", exchange_base_url="https://binance-gateway.example.com"
    )
    watch = factories.watch(db.session, user, live, signal_source="rules:rsi_reversion", auto_execute=True)
    db.session.commit()
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    with responses.RequestsMock() as exchange:
        exchange.get(
            re.compile(r"https://binance-gateway\.example\.com/api/v3/klines\?.*"),
            body=requests.ConnectionError("down"),
        )
        failed = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "replay")
        # The account's sandbox or gateway is the market its orders trade on, never the exchange's public default.
        assert [call.request.url.split("?")[0] for call in exchange.calls] == [
            "https://binance-gateway.example.com/api/v3/klines"
        ] * len(exchange.calls)
    assert (failed.status, failed.failed_step, failed.error_code) == (
        RunStatus.FAILED,
        "candles",
        "MARKET_DATA_UNAVAILABLE",
    )


def test_a_run_whose_account_has_traded_a_later_bar_gives_advice_instead_of_failing(app):
    _, account, watch = trader(auto_execute=True)
    # Another watch of the account (or this one's later run, while this one waited on a slow provider) has already
    # traded the bar closing at 19:00.
    account.last_bar_at = BUY_BAR + timedelta(hours=3)
    db.session.commit()
    run = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    finished = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "store")
    assert (finished.status, finished.error_code, finished.order_id) == (RunStatus.SUCCEEDED, None, None)
    assert count(Order) == 0
    assert run_history.run_summary(db.session, run.id).endswith(
        "BUY (confidence 62); approved (APPROVED, SIZED), advice only: the account has traded up to 2024-01-12 "
        "19:00 UTC"
    )
    db.session.expire_all()
    assert db.session.get(type(account), account.id).last_bar_at == BUY_BAR + timedelta(hours=3)  # never moves back


def test_a_run_before_the_replay_has_enough_history_fails_insufficient_history(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion", timeframe="1d")
    db.session.commit()
    market = replay_market(db.session, current_settings(), lambda: datetime(2026, 12, 1, 12, tzinfo=UTC))
    run = watch_runs.claim(db.session, DueRun(watch.id, datetime(2024, 1, 15, tzinfo=UTC), "schedule"), BUY_BAR)
    failed = watch_runs.execute_run(db.session, current_settings(), run.id, services_for, "replay", market.clock.now)
    assert (failed.status, failed.failed_step, failed.error_code) == (
        RunStatus.FAILED,
        "candles",
        "INSUFFICIENT_HISTORY",
    )
    assert failed.error_message == "the replay has 15 closed BTC/USDT 1d candles at 2024-01-16 05:00 UTC, 201 needed"
