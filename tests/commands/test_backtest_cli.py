"""`flask --app wsgi backtest` on SQLite and PostgreSQL: rules, CSV input, cached AI re-runs at $0, cache-only,
cost refusals, persisted records and report files, background runs."""

import json
from decimal import Decimal

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from app import create_app, current_settings
from app.extensions import db
from app.jobs.backtests import run_queued_backtest
from app.models import Backtest, BacktestJournal, BacktestStatus, User
from app.services.backtests import BacktestRequest, create_backtest, reports_dir
from tests import factories
from tests.conftest import PROJECT_ROOT, clean_environ
from tests.fakes.llm_servers import answer, deepseek_server_fixture  # noqa: F401

BTC_2017_1H = PROJECT_ROOT / "data" / "candles" / "binance_BTCUSDT_1h_2017-08_2021-06.csv"
BTC_2024_1H = PROJECT_ROOT / "data" / "candles" / "binance_BTCUSDT_1h_2024-01_2024-09.csv"
HOLD = {
    "action": "HOLD",
    "confidence": 30,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 3,
    "reasoning": "No edge.",
    "key_factors": ["flat"],
}
AI_WINDOW = ["--start", "2024-09-05", "--end", "2024-09-06", "--every", "4"]


@pytest.fixture
def ai_app(empty_database, tmp_path, deepseek_server):
    app = create_app(
        environ=clean_environ(
            tmp_path / "instance",
            empty_database,
            DEEPSEEK_API_KEY="sk-test-backtest-0001",
            DEEPSEEK_BASE_URL=deepseek_server.url,
        )
    )
    with app.app_context():
        upgrade()
        seed_user_and_candles()
        yield app
        db.session.remove()
        db.engine.dispose()


def seed_user_and_candles():
    factories.user(db.session, email="bt@example.com", display_name="BT")
    factories.candles(db.session, BTC_2024_1H.name)
    db.session.commit()


def backtest(app, *args):
    result = app.test_cli_runner().invoke(args=["backtest", "--symbol", "BTC/USDT", "--json", *args])
    payload = json.loads(result.output) if result.output.strip().startswith("{") else None
    return result, payload


def test_rules_backtest_reports_metrics_baselines_trades_and_files(app):
    seed_user_and_candles()
    result, report = backtest(app, "--signals", "rules:sma_cross", "--param", "fast=10", "--param", "slow=30")
    assert result.exit_code == 0, result.output
    assert {"metrics", "baselines", "ai", "trades", "settings", "gaps", "warnings"} <= set(report)
    assert set(report["baselines"]) == {"buy_and_hold", "rules:sma_cross"}
    assert report["metrics"]["trades"] == len(report["trades"]) > 10
    trade = report["trades"][0]
    assert set(trade) == {"entry_time", "exit_time", "entry_price", "exit_price", "qty", "pnl", "fees", "exit_reason"}
    assert trade["entry_time"].endswith("Z")
    assert report["ai"]["decisions"] == 0 and Decimal(report["ai"]["cost_usd"]) == 0
    record = db.session.get(Backtest, report["backtest_id"])
    assert (record.status, record.progress) == (BacktestStatus.SUCCEEDED, 1.0)
    assert record.metrics["trades"] == report["metrics"]["trades"]
    folder = reports_dir(current_settings(), record.id)
    html = (folder / "report.html").read_text()
    assert "<svg" in html and "https://" not in html
    assert len((folder / "trades.csv").read_text().splitlines()) == len(report["trades"]) + 1
    assert json.loads((folder / "summary.json").read_text())["metrics"] == report["metrics"]


def test_csv_input_gives_the_same_result_as_the_store(app, tmp_path):
    seed_user_and_candles()
    _, stored = backtest(app, "--signals", "rules:rsi_reversion", "--start", "2024-06-01")
    _, from_file = backtest(
        app, "--signals", "rules:rsi_reversion", "--start", "2024-06-01", "--data", str(BTC_2024_1H)
    )
    assert stored["metrics"] == from_file["metrics"]
    assert stored["trades"] == from_file["trades"]


STORED = "stored: 2024-01-01 00:00 -> 2024-09-06 03:00 UTC"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--signals", "rules:sma_cross", "--start", "2030-01-01"],
            f"start 2030-01-01 is after the stored BTC/USDT 1h candles ({STORED[8:]})",
        ),
        (
            ["--signals", "rules:sma_cross", "--start", "2024-05-01", "--end", "2024-04-01"],
            "end 2024-04-01 is before start 2024-05-01",
        ),
        (
            ["--signals", "rules:sma_cross", "--end", "2023-06-01"],
            "end 2023-06-01 is before the stored BTC/USDT 1h candles",
        ),
        (
            ["--signals", "rules:sma_cross", "--start", "2024-02-30"],
            'start must be a calendar date, YYYY-MM-DD, got "2024-02-30" [--start]',
        ),
        (["--signals", "rules:nope"], "unknown rules strategy 'nope'"),
        (["--signals", "rules:sma_cross", "--fee-rate", "abc"], 'fee_rate must be a number, got "abc" [--fee-rate]'),
        (
            ["--signals", "rules:sma_cross", "--fee-rate", "5"],
            'fee_rate must be a fraction in [0, 0.1), e.g. 0.001 for 0.1%, got "5"',
        ),
        (["--signals", "rules:sma_cross", "--balance", "abc"], 'balance must be a number, got "abc" [--balance]'),
        (["--symbol", "BTC/USTD", "--signals", "rules:sma_cross"], "unknown symbol 'BTC/USTD' on binance"),
        (["--symbol", "ETH/USDT", "--signals", "rules:sma_cross"], "no ETH/USDT 1h candles stored for binance"),
        (["--signals", "deepseek -> rules:sma_cross"], "one signal source"),
        (["--signals", "rules:sma_cross", "--cache-only"], "cache_only applies to AI signal sources"),
        (
            ["--signals", "deepseek", "--max-cost", "1", "--start", "2024-09-05"],
            "deepseek has no API key: set DEEPSEEK_API_KEY or store your own deepseek key, or answer from the cache "
            "only (cache_only) [--signals]",
        ),
    ],
)
def test_bad_input_is_refused_with_a_named_problem_and_records_nothing(app, args, message):
    seed_user_and_candles()
    result, _ = backtest(app, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db.session.scalars(select(Backtest)).all() == []


def test_a_bad_risk_file_is_refused_and_records_nothing(app, tmp_path):
    seed_user_and_candles()
    risk = tmp_path / "risk.json"
    risk.write_text('{"min_stop_pct": 12}')
    result, _ = backtest(app, "--signals", "rules:sma_cross", "--risk", str(risk))
    assert result.exit_code == 1 and "risk setting max_stop_pct" in result.output
    risk.write_text("{not json")
    result, _ = backtest(app, "--signals", "rules:sma_cross", "--risk", str(risk))
    assert result.exit_code == 1 and "not a JSON file" in result.output
    assert db.session.scalars(select(Backtest)).all() == []


def test_a_candle_file_too_short_to_backtest_says_how_many_bars_it_holds(app, tmp_path):
    seed_user_and_candles()
    short = tmp_path / "short.csv"
    short.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68\n"
        "1704070800000,42475.23,42775.00,42431.65,42613.56,1196.37\n"
    )
    result, _ = backtest(app, "--signals", "rules:sma_cross", "--data", str(short))
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: not enough BTC/USDT 1h candles in {short}: 2 bar(s) (2024-01-01 00:00 -> 2024-01-01 01:00 UTC), "
        "at least 202 needed (200 warm the indicators up, then 2 to trade on) [--data]"
    )


def test_a_strategy_stopped_by_the_kill_switch_says_so(app, tmp_path):
    seed_user_and_candles()
    risk = tmp_path / "risk.json"
    risk.write_text('{"max_drawdown_pct": 2}')
    result, report = backtest(app, "--signals", "rules:sma_cross", "--start", "2024-02-01", "--risk", str(risk))
    assert result.exit_code == 0, result.output
    halted = [w for w in report["warnings"] if w.startswith("trading halted at ")]
    assert len(halted) == 1 and "MAX_DRAWDOWN" in halted[0] and "no position was opened after that" in halted[0]
    assert report["settings"]["risk_refusals"]["TRADING_HALTED"] > 0
    last_entry = max(trade["entry_time"] for trade in report["trades"])
    assert last_entry < halted[0].removeprefix("trading halted at ")[:16].replace(" ", "T")


def test_a_start_before_the_data_is_moved_with_a_notice(app):
    seed_user_and_candles()
    result, report = backtest(app, "--signals", "rules:sma_cross", "--start", "2010-01-01")
    assert result.exit_code == 0, result.output
    notice = next(w for w in report["warnings"] if w.startswith("start 2010-01-01"))
    assert "is before the stored candles" in notice and "the first decision is at 2024-01-09 08:00 UTC" in notice


def test_a_window_inside_a_gap_of_the_data_names_the_window_and_the_stored_range(app):
    seed_user_and_candles()
    factories.candles(db.session, BTC_2017_1H.name)
    db.session.commit()
    result, _ = backtest(app, "--signals", "rules:sma_cross", "--start", "2022-01-01", "--end", "2023-01-01")
    assert result.exit_code == 1
    assert "for the window 2022-01-01 -> 2023-01-01: 0 bar(s)" in result.output
    assert "the stored candles jump from 2021-06-09 23:00 to 2024-01-01 00:00 UTC" in result.output
    assert "(stored: 2017-08-17 05:00 -> 2024-09-06 03:00 UTC)" in result.output


def test_the_owner_deletes_a_backtest_and_its_reports_and_nobody_else_can(app):
    seed_user_and_candles()
    backtest(app, "--signals", "rules:sma_cross", "--start", "2024-08-01")
    record = db.session.scalars(select(Backtest)).one()
    folder = reports_dir(current_settings(), record.id)
    assert folder.is_dir()
    factories.user(db.session, email="other@example.com", display_name="Other")
    db.session.commit()
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["backtest-delete", str(record.id), "--user", "other@example.com"])
    assert refused.exit_code == 1 and f"no backtest #{record.id}" in refused.output
    deleted = runner.invoke(args=["backtest-delete", str(record.id), "--user", "bt@example.com"])
    assert deleted.exit_code == 0, deleted.output
    assert db.session.scalars(select(Backtest)).all() == [] and not folder.exists()


def test_a_cached_ai_backtest_costs_nothing_the_second_time_and_repeats_exactly(ai_app, deepseek_server):
    decisions = 7  # 28 bars from 2024-09-05 00:00 to 2024-09-06 03:00, every 4th: bars 0, 4, .., 24
    deepseek_server.queue(*[answer(HOLD) for _ in range(decisions)])
    result, first = backtest(ai_app, "--signals", "deepseek", "--max-cost", "0.05", *AI_WINDOW)
    assert result.exit_code == 0, result.output
    assert first["ai"]["decisions"] == decisions == len(deepseek_server.requests)
    assert Decimal(first["ai"]["cost_usd"]) > 0 and first["ai"]["cache_hits"] == 0
    prompt = deepseek_server.requests[0].body["messages"][1]["content"]
    assert "BTC" not in prompt and "2024" not in prompt  # blind by default

    result, second = backtest(ai_app, "--signals", "deepseek", "--max-cost", "0.05", *AI_WINDOW)
    assert result.exit_code == 0, result.output
    assert len(deepseek_server.requests) == decisions  # not one more call
    assert Decimal(second["ai"]["cost_usd"]) == 0 and second["ai"]["cache_hits"] == decisions
    paid_only = {"ai_cost_usd": None, "net_return_after_ai_pct": None}  # the first run paid, the second did not
    assert second["metrics"] | paid_only == first["metrics"] | paid_only
    assert second["trades"] == first["trades"]


def test_cache_only_without_answers_is_no_strategy_result(ai_app, deepseek_server):
    result, report = backtest(ai_app, "--signals", "deepseek", "--cache-only", *AI_WINDOW)
    assert result.exit_code == 1 and report is None
    assert deepseek_server.requests == []
    assert "no AI answers (7 misses of 7 decisions)" in result.output
    record = db.session.scalars(select(Backtest)).one()
    assert record.status is BacktestStatus.FAILED and record.metrics is None
    assert record.error_message.startswith("checking the answers: no AI answers (7 misses")
    assert (record.ai_cache_hits, record.ai_cache_misses) == (0, 7)


def test_cache_only_with_some_answers_says_how_many_were_missing(ai_app, deepseek_server):
    deepseek_server.queue(*[answer(HOLD) for _ in range(4)])
    backtest(
        ai_app,
        "--signals",
        "deepseek",
        "--max-cost",
        "0.05",
        "--start",
        "2024-09-05",
        "--end",
        "2024-09-06",
        "--every",
        "8",
    )
    result, report = backtest(ai_app, "--signals", "deepseek", "--cache-only", *AI_WINDOW)
    assert result.exit_code == 0, result.output
    assert deepseek_server.requests[4:] == []
    assert report["ai"]["decisions"] == 7 and report["ai"]["cache_hits"] == 4
    assert "the AI answered 4 of 7 decisions; the 3 without an answer were treated as HOLD" in report["warnings"]
    assert any("knowledge cutoff" in warning for warning in report["warnings"])


def test_paid_runs_need_an_allowance_that_covers_the_estimate(ai_app, deepseek_server):
    result, _ = backtest(ai_app, "--signals", "deepseek", *AI_WINDOW)
    assert result.exit_code == 1 and "allow it with a max_cost in USD that covers the estimate" in result.output
    assert "[--max-cost]" in result.output
    result, _ = backtest(ai_app, "--signals", "deepseek", "--max-cost", "0.0000001", *AI_WINDOW)
    assert result.exit_code == 1 and "is above max_cost $0.0000" in result.output
    assert deepseek_server.requests == []


def test_a_queued_run_reports_progress_and_results_on_its_record(app):
    seed_user_and_candles()
    user = db.session.scalars(select(User)).one()
    request = BacktestRequest(user_id=user.id, symbol="BTC/USDT", timeframe="1h", signals="rules:ema_rsi_volume")
    record = create_backtest(db.session, current_settings(), request)
    db.session.commit()
    assert record.status is BacktestStatus.QUEUED
    assert run_queued_backtest(app, record.id, "worker:1")
    db.session.expire_all()
    record = db.session.get(Backtest, record.id)
    assert (record.status, record.progress, record.error_message) == (BacktestStatus.SUCCEEDED, 1.0, None)
    assert record.window_start is not None and record.metrics["trades"] >= 0


def test_an_identical_rerun_replays_the_journal_even_from_the_cache_only_mode(ai_app, deepseek_server):
    deepseek_server.queue(*[answer(HOLD) for _ in range(7)])
    backtest(ai_app, "--signals", "deepseek", "--max-cost", "0.05", *AI_WINDOW)
    journal = db.session.scalars(select(BacktestJournal)).one()
    assert (journal.provider, journal.model, journal.decisions) == ("deepseek", "deepseek-flash", 7)
    result = ai_app.test_cli_runner().invoke(
        args=["backtest", "--symbol", "BTC/USDT", "--signals", "replay:deepseek", *AI_WINDOW]
    )
    assert result.exit_code == 0, result.output
    assert "7 cached answer(s)" in result.output and "estimated cost none (cache only)" in result.output
    assert len(deepseek_server.requests) == 7
    _, other_window = backtest(ai_app, "--signals", "deepseek", "--cache-only", "--every", "2", *AI_WINDOW[:4])
    assert other_window["ai"]["cache_misses"] > 0  # a different run has no journal to lean on


def test_a_window_across_a_long_gap_is_refused_naming_it_unless_gaps_are_allowed(app):
    seed_user_and_candles()
    factories.candles(db.session, BTC_2017_1H.name)
    db.session.commit()
    window = ["--signals", "rules:sma_cross", "--start", "2021-01-01", "--end", "2024-03-01"]
    result, report = backtest(app, *window)
    assert result.exit_code == 1 and report is None
    assert (
        "spans a gap in the BTC/USDT 1h candles longer than the 24 missing bar(s) allowed: 2021-06-10 00:00 -> "
        "2023-12-31 23:00 UTC, 22,440 missing bar(s) (935.0 days); choose a window without it, allow longer gaps, "
        "or allow gaps to run across it [--allow-gaps]"
    ) in " ".join(result.output.split())
    assert db.session.scalars(select(Backtest)).all() == []

    result, report = backtest(app, *window, "--max-gap-bars", "3")  # the 2021-04-25 gap of 3 bars is allowed
    assert result.exit_code == 1 and "longer than the 3 missing bar(s) allowed: 2021-06-10 00:00" in result.output

    result, report = backtest(app, *window, "--allow-gaps")
    assert result.exit_code == 0, result.output
    assert max(gap["missing_bars"] for gap in report["gaps"]) == 22_440
    # Buy-and-hold is under the 2021-04-14 06:00 close (64,577.26) from the next bar to the window's last, the
    # 2024-03-01 23:00 bar: 2,820 bars, but 1,052 days and 17 hours of calendar time across the hole.
    hold = report["baselines"]["buy_and_hold"]
    # Issue 9 item 7: +114.56% from 2021-01 to 2024-03 is about 27% a year over the calendar; annualised over the
    # bars that exist (some 7 months of them) it read 253%.
    assert hold["total_return_pct"] == pytest.approx(114.5568, abs=1e-4)
    assert hold["cagr_pct"] == pytest.approx(27.2572, abs=1e-4)
    assert hold["max_drawdown_duration_bars"] == 2_820
    assert hold["max_drawdown_duration_days"] == pytest.approx(1052 + 17 / 24)
    html = (reports_dir(current_settings(), report["backtest_id"]) / "report.html").read_text()
    assert html.count("<title>no data: 2021-06-10 00:00 -&gt; 2023-12-31 23:00 UTC, 22,440 bars</title>") == 6
    assert (
        "the window spans 5 gap(s) in the data, 22,447 missing bar(s) in all; the longest: 2021-06-10 00:00 -> "
        "2023-12-31 23:00 UTC, 22,440 bar(s) (935.0 days). Nothing is traded or filled inside a gap, and the metrics "
        "count it as calendar time: CAGR, volatility, Sharpe and Sortino are annualised over the calendar, and the "
        "bar after a gap carries the whole move across it as one return."
    ) in report["warnings"]
