"""The backtest use-cases called directly, on SQLite and PostgreSQL: bad requests are refused naming their field
before anything is recorded; a recorded rules run stores its metrics and report files; only the owner deletes."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app import current_settings
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.extensions import db
from app.models import Backtest, BacktestStatus
from app.services.backtests import (
    BacktestRequest,
    create_backtest,
    delete_backtest,
    prepare,
    reports_dir,
    run_recorded_backtest,
)
from tests import factories

STORED = "stored: 2024-01-01 00:00 -> 2024-09-06 03:00 UTC"


@pytest.fixture
def owner(app):
    user = factories.user(db.session)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user


def request_for(user, **fields):
    values = {"user_id": user.id, "symbol": "BTC/USDT", "timeframe": "1h", "signals": "rules:sma_cross", **fields}
    return BacktestRequest(**values)


def recorded():
    return db.session.scalar(select(func.count()).select_from(Backtest))


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"symbol": "BTC/USTD"}, "symbol", "BTC/USTD"),
        ({"symbol": "ETH/USDT"}, "symbol", "no ETH/USDT 1h candles stored for binance"),
        ({"timeframe": "7m"}, "timeframe", 'got "7m"'),
        ({"signals": "rules:nope"}, "signals", "unknown rules strategy 'nope'"),
        ({"signals": "deepseek -> rules:sma_cross"}, "signals", "one signal source"),
        ({"params": {"fast": "abc"}}, "params", "fast"),
        ({"signals": "deepseek", "params": {"fast": "10"}}, "params", "params only apply to a rules:STRATEGY"),
        ({"cache_only": True}, "cache_only", "cache_only applies to AI signal sources"),
        ({"every": 0}, "every", "every must be a whole number of bars"),
        ({"balance": "abc"}, "balance", 'balance must be a number, got "abc"'),
        ({"balance": "-5"}, "balance", "balance must be a positive amount"),
        ({"fee_rate": "5"}, "fee_rate", 'fee_rate must be a fraction in [0, 0.1), e.g. 0.001 for 0.1%, got "5"'),
        ({"slippage_bps": "2000"}, "slippage_bps", "slippage_bps must be basis points in [0, 1000]"),
        ({"max_cost": "-1"}, "max_cost", 'max_cost must be a positive amount in USD, got "-1"'),  # free source too
        ({"risk": {"min_stop_pct": 12}}, "risk", "max_stop_pct"),
        ({"start": "2024-02-30"}, "start", 'start must be a calendar date, YYYY-MM-DD, got "2024-02-30"'),
        ({"start": "2030-01-01"}, "start", f"start 2030-01-01 is after the stored BTC/USDT 1h candles ({STORED[8:]})"),
        ({"start": "2024-05-01", "end": "2024-04-01"}, "end", "end 2024-04-01 is before start 2024-05-01"),
        ({"end": "2023-06-01"}, "end", "end 2023-06-01 is before the stored BTC/USDT 1h candles"),
        ({"data_file": "/no/such/file.csv"}, "data_file", "/no/such/file.csv"),
    ],
)
def test_prepare_refuses_bad_input_naming_its_field_and_writes_nothing(owner, fields, field, message):
    with pytest.raises(InvalidInputError) as refusal:
        prepare(db.session, current_settings(), request_for(owner, **fields))
    assert refusal.value.field == field
    assert message in refusal.value.message
    assert recorded() == 0


def test_create_backtest_records_nothing_for_a_refused_request(owner):
    with pytest.raises(InvalidInputError) as refusal:
        create_backtest(db.session, current_settings(), request_for(owner, fee_rate="abc"))
    assert refusal.value.field == "fee_rate"
    db.session.commit()
    assert recorded() == 0


def test_a_recorded_rules_run_stores_its_metrics_and_report_files(owner):
    settings = current_settings()
    record = create_backtest(db.session, settings, request_for(owner, start="2024-08-01", params={"fast": "10"}))
    db.session.commit()
    assert (record.status, record.user_id, record.signal_params) == (BacktestStatus.QUEUED, owner.id, {"fast": "10"})

    progress = []
    _, report = run_recorded_backtest(db.session, settings, record.id, on_progress=progress.append)
    assert progress and progress[-1] <= 1.0

    db.session.expire_all()
    stored = db.session.get(Backtest, record.id)
    assert (stored.status, stored.progress, stored.error_message) == (BacktestStatus.SUCCEEDED, 1.0, None)
    assert stored.started_at is not None and stored.finished_at >= stored.started_at
    assert (stored.window_start, stored.window_end) == (
        datetime(2024, 8, 1, tzinfo=UTC),
        datetime(2024, 9, 6, 3, tzinfo=UTC),
    )
    assert stored.metrics["trades"] == len(report.trades) > 0
    assert set(stored.baselines) == {"buy_and_hold", "rules:sma_cross"}
    assert (stored.ai_cost_usd, stored.ai_cache_hits, stored.ai_cache_misses) == (0, 0, 0)
    folder = reports_dir(settings, record.id)
    assert {path.name for path in folder.iterdir()} >= {"report.html", "trades.csv", "summary.json"}


def test_running_a_missing_backtest_is_not_found(owner):
    with pytest.raises(NotFoundError) as refusal:
        run_recorded_backtest(db.session, current_settings(), 999_999)
    assert refusal.value.field == "backtest_id"


@pytest.fixture
def finished(owner):
    settings = current_settings()
    record = create_backtest(db.session, settings, request_for(owner, start="2024-08-20"))
    db.session.commit()
    run_recorded_backtest(db.session, settings, record.id)
    return record.id


def test_someone_else_cannot_delete_a_backtest(owner, finished):
    stranger = factories.user(db.session)
    db.session.commit()
    with pytest.raises(NotFoundError) as refusal:
        delete_backtest(db.session, current_settings(), stranger.id, finished)
    assert (refusal.value.field, refusal.value.message) == ("backtest_id", f"no backtest #{finished}")
    db.session.commit()
    assert recorded() == 1
    assert reports_dir(current_settings(), finished).is_dir()


def test_the_owner_deletes_a_backtest_and_its_report_files(owner, finished):
    delete_backtest(db.session, current_settings(), owner.id, finished)
    db.session.commit()
    assert recorded() == 0
    assert not reports_dir(current_settings(), finished).exists()


def test_a_running_backtest_cannot_be_deleted(owner, finished):
    db.session.get(Backtest, finished).status = BacktestStatus.RUNNING
    db.session.commit()
    with pytest.raises(ConflictError) as refusal:
        delete_backtest(db.session, current_settings(), owner.id, finished)
    assert refusal.value.field == "backtest_id"
    assert recorded() == 1
