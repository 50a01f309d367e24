"""The watch use-cases called directly, on SQLite and PostgreSQL: creation validated field by field (nothing written
on a refusal), ownership, duplicates, edits re-validated, pause/resume/delete audited, the latest run."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import current_settings
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.extensions import db
from app.models import AuditEvent, RunStatus, Watch, WatchRun
from app.schemas.watches import WatchOut
from app.services.credentials import store_llm_key
from app.services.watches import (
    NewWatch,
    WatchChange,
    change_watch,
    create_watch,
    delete_watch,
    get_watch,
    pause_watch,
    resume_watch,
    watch_views,
)
from tests import factories

BAR = datetime(2024, 1, 12, 16, 0, tzinfo=UTC)


@pytest.fixture
def owner(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    store_llm_key(db.session, current_settings(), user.id, "deepseek", "sk-test-owner-key")  # paid sources need one
    db.session.commit()
    return user, account


@pytest.fixture
def stranger(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    db.session.commit()
    return user, account


def add(user, **fields):
    values = {"symbol": "BTC/USDT", "timeframe": "1h", "signals": "rules:sma_cross", **fields}
    view = create_watch(db.session, current_settings(), user.id, NewWatch(**values))
    db.session.commit()
    return view


def events(prefix="watch."):
    query = select(AuditEvent).where(AuditEvent.event.startswith(prefix)).order_by(AuditEvent.id)
    return db.session.scalars(query).all()


def watch_count():
    return db.session.scalar(select(func.count()).select_from(Watch))


def test_a_new_watch_runs_on_every_close_of_its_timeframe_and_gives_advice_only(owner):
    user, _ = owner
    view = add(user, symbol=" btc/usdt ", timeframe="1d", signals="Rules:sma_cross", params={"fast": "5"})
    db.session.expire_all()
    watch = db.session.get(Watch, view.watch.id)
    assert (watch.symbol, watch.timeframe, watch.cadence_minutes, watch.exchange_id) == (
        "BTC/USDT",
        "1d",
        1440,
        "binance",
    )
    assert (watch.signal_source, watch.signal_params) == ("rules:sma_cross", {"fast": 5})
    assert (watch.account_id, watch.max_cost_per_call_usd, watch.daily_budget_usd) == (None, None, None)
    assert (watch.auto_execute, watch.enabled) == (False, True)
    assert view.schedule == "on every 1d close"
    [event] = events()
    assert (event.event, event.user_id) == ("watch.created", user.id)
    assert event.message == f"created watch #{watch.id} (BTC/USDT 1d on binance, rules:sma_cross)"


def test_a_paid_source_without_any_api_key_is_refused(app):
    user = factories.user(db.session, email="keyless@example.com")
    db.session.commit()
    with pytest.raises(InvalidInputError) as refusal:
        create_watch(
            db.session, current_settings(), user.id, NewWatch(symbol="BTC/USDT", timeframe="1h", signals="claude")
        )
    assert refusal.value.field == "signals"
    assert refusal.value.message.startswith("signals claude asks claude, which has no API key yet")
    assert db.session.scalar(select(func.count()).select_from(Watch)) == 0


def test_budgets_account_and_auto_execution_are_stored(owner):
    user, account = owner
    view = add(
        user,
        signals="deepseek -> rules:sma_cross",
        account_id=account.id,
        max_cost_per_call_usd="0.002",
        daily_budget_usd="0.50",
        auto_execute=True,
    )
    db.session.expire_all()
    watch = db.session.get(Watch, view.watch.id)
    assert watch.signal_source == "deepseek -> rules:sma_cross"
    assert (watch.account_id, watch.auto_execute) == (account.id, True)
    assert (watch.max_cost_per_call_usd, watch.daily_budget_usd) == (Decimal("0.002"), Decimal("0.5"))
    assert events()[0].account_id == account.id


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"timeframe": "7m"},
            "timeframe",
            'timeframe must be one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w, got "7m"',
        ),
        ({"signals": "gpt"}, "signals", "unknown signal source 'gpt' (use one of: deepseek, claude, rules, replay)"),
        (
            {"signals": "rules:nope"},
            "signals",
            "unknown rules strategy 'nope' (known: ema_rsi_volume, rsi_reversion, sma_cross)",
        ),
        ({"params": {"fast": "x"}}, "params", "parameter fast must be an integer, got 'x'"),
        (
            {"signals": "deepseek", "params": {"fast": "5"}},
            "params",
            "params only apply to a rules:STRATEGY signal source",
        ),
        (
            {"max_cost_per_call_usd": "abc"},
            "max_cost_per_call_usd",
            'max_cost_per_call_usd must be an amount in USD, got "abc"',
        ),
        (
            {"daily_budget_usd": "-1"},
            "daily_budget_usd",
            'daily_budget_usd must be between 0 and 100,000 USD, got "-1"',
        ),
        (
            {"daily_budget_usd": "NaN"},
            "daily_budget_usd",
            'daily_budget_usd must be an amount in USD, got "NaN"',
        ),
        (
            {"max_cost_per_call_usd": "1e308"},
            "max_cost_per_call_usd",
            'max_cost_per_call_usd must be between 0 and 100,000 USD, got "1e308"',
        ),
        ({"auto_execute": True}, "auto_execute", "auto_execute needs an account: orders go to one named account"),
        (
            {"symbol": "NOPE/USDT"},
            "symbol",
            "unknown symbol 'NOPE/USDT' on binance: not in the stored binance markets (bundled snapshot of 2025-01-01, "
            "2 market(s): BTC/USDT, ETH/USDT); if binance lists it, refresh them (markets refresh)",
        ),
        ({"signals": "->".join(["rules:sma_cross"] * 6)}, "signals", "signals must be at most 80 characters, got 110"),
    ],
)
def test_each_refusal_names_its_field_and_writes_nothing(owner, fields, field, message):
    user, _ = owner
    with pytest.raises(InvalidInputError) as refusal:
        add(user, **fields)
    db.session.rollback()
    assert refusal.value.field == field
    assert refusal.value.message == message
    assert "\n" not in refusal.value.message
    assert watch_count() == 0 and events() == []


def test_a_foreign_or_missing_account_is_not_found(owner, stranger):
    user, _ = owner
    _, foreign = stranger
    for account_id in (foreign.id, foreign.id + 1000):
        with pytest.raises(NotFoundError) as refusal:
            add(user, account_id=account_id)
        db.session.rollback()
        assert (refusal.value.field, refusal.value.message) == ("account_id", f"no account #{account_id}")
    assert watch_count() == 0


def test_an_account_on_another_exchange_is_refused(owner):
    user, _ = owner
    kraken = factories.paper_account(db.session, user, exchange_id="kraken")
    db.session.commit()
    with pytest.raises(InvalidInputError) as refusal:
        add(user, account_id=kraken.id)
    assert (refusal.value.field, refusal.value.message) == (
        "account_id",
        f"account #{kraken.id} trades on kraken, not binance",
    )


def test_a_duplicate_is_a_conflict_naming_the_existing_watch(owner, stranger):
    user, _ = owner
    first = add(user, signals="rules:sma_cross")
    with pytest.raises(ConflictError) as refusal:
        add(user, symbol="btc/usdt", signals=" rules:sma_cross ")
    db.session.rollback()
    assert refusal.value.message == (
        f"you already have watch #{first.watch.id} for BTC/USDT 1h on binance with rules:sma_cross"
    )
    assert refusal.value.details == {"watch_id": first.watch.id}
    # Another timeframe, another source or another user is a different watch.
    add(user, timeframe="1d")
    add(user, signals="rules:rsi_reversion")
    add(stranger[0])
    assert watch_count() == 4


def test_an_edit_is_revalidated_stored_and_audited(owner):
    user, account = owner
    view = add(user, params={"fast": "5"})
    watch_id = view.watch.id
    changed = change_watch(
        db.session,
        user.id,
        watch_id,
        WatchChange(account_id=account.id, max_cost_per_call_usd="0.01", daily_budget_usd="1", auto_execute=True),
    )
    db.session.commit()
    assert changed.watch.signal_params == {"fast": 5}
    db.session.expire_all()
    watch = db.session.get(Watch, watch_id)
    assert (watch.account_id, watch.auto_execute) == (account.id, True)
    assert (watch.max_cost_per_call_usd, watch.daily_budget_usd) == (Decimal("0.01"), Decimal(1))
    event = events("watch.changed")[0]
    assert event.message == (
        f"changed watch #{watch_id} (BTC/USDT 1h on binance, rules:sma_cross): "
        f"account_id={account.id}, max_cost_per_call_usd=0.01, daily_budget_usd=1, auto_execute=true"
    )
    assert event.details["before"]["auto_execute"] is False and event.details["after"]["auto_execute"] is True

    # Removing the account while auto-executing is refused; nothing changes.
    with pytest.raises(InvalidInputError) as refusal:
        change_watch(db.session, user.id, watch_id, WatchChange(account_id=None))
    db.session.rollback()
    assert refusal.value.field == "auto_execute"
    # A source without the stored strategy's parameters keeps none of them only when told so.
    with pytest.raises(InvalidInputError) as refusal:
        change_watch(db.session, user.id, watch_id, WatchChange(signals="deepseek"))
    db.session.rollback()
    assert (refusal.value.field, refusal.value.message) == (
        "params",
        "params only apply to a rules:STRATEGY signal source",
    )
    change_watch(db.session, user.id, watch_id, WatchChange(signals="deepseek", params={}, max_cost_per_call_usd=None))
    db.session.commit()
    db.session.expire_all()
    watch = db.session.get(Watch, watch_id)
    assert (watch.signal_source, watch.signal_params, watch.max_cost_per_call_usd) == ("deepseek", {}, None)
    assert len(events("watch.changed")) == 2

    # A change to nothing new is not audited.
    change_watch(db.session, user.id, watch_id, WatchChange(auto_execute=True))
    db.session.commit()
    assert len(events("watch.changed")) == 2


def test_an_edit_into_a_duplicate_is_a_conflict(owner):
    user, _ = owner
    first = add(user, signals="rules:sma_cross")
    second = add(user, signals="rules:rsi_reversion")
    with pytest.raises(ConflictError) as refusal:
        change_watch(db.session, user.id, second.watch.id, WatchChange(signals="rules:sma_cross"))
    assert f"watch #{first.watch.id}" in refusal.value.message


def test_a_bad_budget_on_edit_changes_nothing(owner):
    user, _ = owner
    watch_id = add(user, daily_budget_usd="2").watch.id
    with pytest.raises(InvalidInputError) as refusal:
        change_watch(db.session, user.id, watch_id, WatchChange(daily_budget_usd="two", signals="rules:rsi_reversion"))
    db.session.rollback()
    assert (refusal.value.field, refusal.value.message) == (
        "daily_budget_usd",
        'daily_budget_usd must be an amount in USD, got "two"',
    )
    db.session.expire_all()
    watch = db.session.get(Watch, watch_id)
    assert (watch.daily_budget_usd, watch.signal_source) == (Decimal(2), "rules:sma_cross")
    assert events("watch.changed") == []


def test_pause_and_resume_toggle_enabled_and_are_audited(owner):
    user, account = owner
    watch_id = add(user, account_id=account.id).watch.id
    assert pause_watch(db.session, user.id, watch_id).watch.enabled is False
    db.session.commit()
    pause_watch(db.session, user.id, watch_id)  # already paused: nothing to record
    db.session.commit()
    assert resume_watch(db.session, user.id, watch_id).watch.enabled is True
    db.session.commit()
    recorded = [(e.event, e.message, e.account_id) for e in events() if e.event != "watch.created"]
    label = f"watch #{watch_id} (BTC/USDT 1h on binance, rules:sma_cross)"
    assert recorded == [
        ("watch.paused", f"paused {label}", account.id),
        ("watch.resumed", f"resumed {label}", account.id),
    ]


def test_delete_removes_the_watch_and_its_runs_and_is_audited(owner):
    user, _ = owner
    watch_id = add(user).watch.id
    db.session.add(WatchRun(watch_id=watch_id, bar_time=BAR, trigger="schedule", status=RunStatus.SUCCEEDED))
    db.session.commit()
    delete_watch(db.session, user.id, watch_id)
    db.session.commit()
    assert watch_count() == 0
    assert db.session.scalar(select(func.count()).select_from(WatchRun)) == 0
    event = events("watch.deleted")[0]
    assert event.message == f"deleted watch #{watch_id} (BTC/USDT 1h on binance, rules:sma_cross)"
    assert event.details["watch_id"] == watch_id


@pytest.mark.parametrize("action", ["get", "change", "pause", "resume", "delete"])
def test_someone_elses_or_a_missing_watch_is_not_found(owner, stranger, action):
    user, _ = owner
    foreign = add(stranger[0]).watch.id
    calls = {
        "get": lambda watch_id: get_watch(db.session, user.id, watch_id),
        "change": lambda watch_id: change_watch(db.session, user.id, watch_id, WatchChange(auto_execute=False)),
        "pause": lambda watch_id: pause_watch(db.session, user.id, watch_id),
        "resume": lambda watch_id: resume_watch(db.session, user.id, watch_id),
        "delete": lambda watch_id: delete_watch(db.session, user.id, watch_id),
    }
    for watch_id in (foreign, foreign + 1000):
        with pytest.raises(NotFoundError) as refusal:
            calls[action](watch_id)
        assert (refusal.value.field, refusal.value.message) == ("watch_id", f"no watch #{watch_id}")
    db.session.rollback()
    assert db.session.get(Watch, foreign).enabled is True
    assert [e.event for e in events()] == ["watch.created"]


def test_the_view_carries_the_latest_run_by_bar_time(owner):
    user, account = owner
    first = add(user, account_id=account.id, max_cost_per_call_usd="0.002").watch
    second = add(user, symbol="ETH/USDT").watch
    later = datetime(2024, 1, 12, 17, 0, tzinfo=UTC)
    db.session.add_all(
        [
            WatchRun(
                watch_id=first.id,
                bar_time=later,
                trigger="schedule",
                status=RunStatus.FAILED,
                failed_step="candles",
                error_code="MARKET_DATA_UNAVAILABLE",
                error_message="binance did not answer",
            ),
            WatchRun(watch_id=first.id, bar_time=BAR, trigger="schedule", status=RunStatus.SUCCEEDED),
        ]
    )
    db.session.commit()
    views = watch_views(db.session, user.id)
    assert [(v.watch.symbol, v.last_run and v.last_run.bar_time) for v in views] == [
        ("BTC/USDT", later),
        ("ETH/USDT", None),
    ]
    out = WatchOut.of(views[0]).model_dump(mode="json")
    assert out == {
        "id": first.id,
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "schedule": "on every 1h close",
        "exchange": "binance",
        "signal_source": "rules:sma_cross",
        "params": {},
        "account_id": account.id,
        "max_cost_per_call_usd": "0.002",
        "daily_budget_usd": None,
        "auto_execute": False,
        "enabled": True,
        "last_bar_at": None,
        "last_run": {
            "status": "failed",
            "bar_time": "2024-01-12T17:00:00+00:00",
            "failed_step": "candles",
            "error_code": "MARKET_DATA_UNAVAILABLE",
            "error_message": "binance did not answer",
        },
    }
    assert WatchOut.of(views[1]).last_run is None
    assert second.id != first.id


def test_a_watch_the_replay_cannot_serve_is_refused_naming_what_it_replays(owner):
    user, _ = owner
    with pytest.raises(InvalidInputError) as refusal:
        add(user, timeframe="4h")
    assert refusal.value.field == "timeframe" and refusal.value.details == {"value": "4h"}
    assert refusal.value.message.startswith(
        "the replay market has no BTC/USDT 4h candles (it replays BTC/USDT 1d, BTC/USDT 1h, ETH/USDT 1d, ETH/USDT 1h)"
    )
    assert watch_count() == 0


def test_a_replay_watch_without_enough_history_yet_is_added_with_a_warning_saying_until_when(owner):
    user, _ = owner
    # A fresh replay is at 2024-01-16 05:00: 15 daily candles have closed, and a run needs 201.
    view = add(user, timeframe="1d")
    assert view.warnings == (
        (
            "the replay has 15 closed BTC/USDT 1d candles now and a run needs 201: this watch's runs fail until "
            f"the replay reaches 2024-07-20 00:00 UTC (in about {view.warnings[0].rsplit('about ', 1)[1]}"
        ),
    )
    assert add(user).warnings == ()  # 1h: 365 closed candles already


def test_on_the_candle_store_a_series_that_is_not_stored_is_refused(owner):
    user, _ = owner
    settings = current_settings()
    store = replace(settings, scheduler=replace(settings.scheduler, market="store"))
    with pytest.raises(InvalidInputError) as refusal:
        create_watch(db.session, store, user.id, NewWatch("BTC/USDT", "1h", "rules:sma_cross"))
    assert refusal.value.message == (
        "no BTC/USDT 1h candles are stored for binance, and scheduled watches read the candle store "
        "(STEADYHAND_MARKET=store): import them first"
    )
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    assert create_watch(db.session, store, user.id, NewWatch("BTC/USDT", "1h", "rules:sma_cross")).warnings == ()


def test_a_live_accounts_watch_reads_its_exchange_and_is_not_held_to_the_replay(app):
    user = factories.user(db.session)
    live = factories.live_account(db.session, user, label="main")
    db.session.commit()
    view = add(user, timeframe="4h", account_id=live.id)
    assert (view.watch.timeframe, view.warnings) == ("4h", ())
