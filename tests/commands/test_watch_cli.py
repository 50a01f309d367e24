"""`flask --app wsgi watch ...` on SQLite and PostgreSQL: the lines it prints, refusals as one line naming the option,
confirmation before a delete, and the demo's watches. Validation itself is tested at the service
(tests/services/test_watches.py)."""

import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app import current_settings
from app.extensions import db
from app.models import RunStatus, Watch, WatchRun
from app.services.credentials import store_llm_key
from tests import factories


@pytest.fixture
def owner(app):
    user = factories.user(db.session, email="owner@example.com")
    account = factories.paper_account(db.session, user)
    store_llm_key(db.session, current_settings(), user.id, "deepseek", "sk-test-owner-key")  # paid sources need one
    db.session.commit()
    return user, account


def watch(runner, *args, input=None):
    return runner.invoke(args=["watch", *args], input=input)


def only_watch():
    return db.session.scalars(select(Watch)).one()


def test_add_then_list_prints_one_line_per_watch(runner, owner):
    _, account = owner
    added = watch(runner, "add", "btc/usdt", "--signals", "rules:sma_cross", "--param", "fast=5")
    assert added.exit_code == 0, added.output
    first = only_watch()
    line = (
        f"#{first.id}  BTC/USDT 1h on binance  on every 1h close  rules:sma_cross (fast=5)  no account  "
        "no per-call cap, no daily budget  advice only  enabled  never run"
    )
    assert added.output == f"added {line}\n"

    second = watch(
        runner,
        *("add", "ETH/USDT", "--timeframe", "1d", "--signals", "deepseek", "--account", str(account.id)),
        *("--max-cost", "0.002", "--daily-budget", "0.50", "--auto-execute"),
    )
    assert second.exit_code == 0, second.output
    # A fresh replay has 15 daily candles; a run needs 201.
    assert second.output.splitlines()[1].startswith(
        "warning: the replay has 15 closed ETH/USDT 1d candles now and a run needs 201: this watch's runs fail until "
        "the replay reaches 2024-07-20 00:00 UTC (in about "
    )
    other = db.session.scalar(select(Watch).where(Watch.symbol == "ETH/USDT"))
    db.session.add(
        WatchRun(
            watch_id=other.id,
            bar_time=datetime(2024, 1, 12, 16, 0, tzinfo=UTC),
            trigger="schedule",
            status=RunStatus.FAILED,
            error_code="MARKET_DATA_UNAVAILABLE",
            error_message="binance did not answer",
        )
    )
    db.session.commit()

    listed = watch(runner, "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        line,
        f"#{other.id}  ETH/USDT 1d on binance  on every 1d close  deepseek  account #{account.id}  "
        "max 0.002 USD per call, 0.5 USD per day  auto-execute  enabled  "
        "last run 2024-01-12 16:00 UTC failed (MARKET_DATA_UNAVAILABLE: binance did not answer)",
    ]

    as_json = json.loads(watch(runner, "list", "--json").output)
    assert [(w["id"], w["schedule"], w["max_cost_per_call_usd"]) for w in as_json] == [
        (first.id, "on every 1h close", None),
        (other.id, "on every 1d close", "0.002"),
    ]
    assert as_json[1]["last_run"]["status"] == "failed"


def test_no_watches_yet(runner, owner):
    assert watch(runner, "list").output == "no watches yet\n"
    assert watch(runner, "list", "--json").output == "[]\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--max-cost", "abc"],
            'Error: max_cost_per_call_usd must be an amount in USD, got "abc" [--max-cost]',
        ),
        (
            ["--daily-budget", "-1"],
            'Error: daily_budget_usd must be between 0 and 100,000 USD, got "-1" [--daily-budget]',
        ),
        (
            ["--timeframe", "7m"],
            'Error: timeframe must be one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w, got "7m" [--timeframe]',
        ),
        (
            ["--signals", "gpt"],
            "Error: unknown signal source 'gpt' (use one of: deepseek, claude, rules, replay) [--signals]",
        ),
        (["--param", "fast=x"], "Error: parameter fast must be an integer, got 'x' [--param]"),
        (["--auto-execute"], "Error: auto_execute needs an account: orders go to one named account [--auto-execute]"),
        (["--account", "999999"], "Error: no account #999999 [--account]"),
    ],
)
def test_a_refusal_is_one_line_naming_the_option_and_adds_nothing(runner, owner, args, message):
    result = watch(runner, "add", "BTC/USDT", "--signals", "rules:sma_cross", *args)
    assert result.exit_code == 1
    assert result.output == message + "\n"
    assert db.session.scalar(select(func.count()).select_from(Watch)) == 0


def test_an_unknown_symbol_names_the_argument(runner, owner):
    result = watch(runner, "add", "NOPE/USDT", "--signals", "rules:sma_cross")
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown symbol 'NOPE/USDT' on binance")
    assert result.output.endswith(" [SYMBOL]\n") and result.output.count("\n") == 1


def test_a_duplicate_is_refused_naming_the_existing_watch(runner, owner):
    watch(runner, "add", "BTC/USDT", "--signals", "rules:sma_cross")
    again = watch(runner, "add", "BTC/USDT", "--signals", "rules:sma_cross")
    assert again.exit_code == 1
    assert again.output == (
        f"Error: you already have watch #{only_watch().id} for BTC/USDT 1h on binance with rules:sma_cross\n"
    )


def test_edit_pause_resume_and_delete(runner, owner):
    user, account = owner
    row = factories.watch(db.session, user, signal_params={"fast": 5})
    db.session.commit()
    prefix = f"#{row.id}  BTC/USDT 1h on binance  on every 1h close"

    edited = watch(
        runner,
        *("edit", str(row.id), "--account", str(account.id), "--max-cost", "0.01", "--auto-execute"),
    )
    assert edited.exit_code == 0, edited.output
    assert edited.output == (
        f"changed {prefix}  rules:sma_cross (fast=5)  account #{account.id}  "
        "max 0.01 USD per call, no daily budget  auto-execute  enabled  never run\n"
    )
    cleared = watch(runner, "edit", str(row.id), "--clear-params", "--max-cost", "none", "--advice-only")
    assert cleared.output == (
        f"changed {prefix}  rules:sma_cross  account #{account.id}  "
        "no per-call cap, no daily budget  advice only  enabled  never run\n"
    )
    refused = watch(runner, "edit", str(row.id), "--no-account", "--auto-execute")
    assert refused.output == "Error: auto_execute needs an account: orders go to one named account [--auto-execute]\n"

    tail = f"rules:sma_cross  account #{account.id}  no per-call cap, no daily budget  advice only"
    assert watch(runner, "pause", str(row.id)).output == f"paused {prefix}  {tail}  paused  never run\n"
    assert watch(runner, "resume", str(row.id)).output == f"resumed {prefix}  {tail}  enabled  never run\n"

    declined = watch(runner, "delete", str(row.id), input="n\n")
    assert declined.exit_code == 1
    assert declined.output.startswith(f"Delete {prefix}  {tail}  enabled  never run? [y/N]: n\nAborted!")
    assert db.session.scalar(select(func.count()).select_from(Watch)) == 1
    confirmed = watch(runner, "delete", str(row.id), input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.output.endswith(f"deleted watch #{row.id} BTC/USDT 1h via rules:sma_cross\n")
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Watch)) == 0


@pytest.mark.parametrize("command", ["edit", "pause", "resume", "delete"])
def test_someone_elses_watch_is_not_found(runner, owner, command):
    stranger = factories.user(db.session)
    foreign = factories.watch(db.session, stranger)
    db.session.commit()
    result = watch(
        runner, command, str(foreign.id), "--user", "owner@example.com", *(["--yes"] * (command == "delete"))
    )
    assert result.exit_code == 1
    assert result.output == f"Error: no watch #{foreign.id} [ID]\n"
    db.session.expire_all()
    assert db.session.get(Watch, foreign.id).enabled is True


def test_delete_with_yes_does_not_ask(runner, owner):
    user, _ = owner
    row = factories.watch(db.session, user)
    db.session.commit()
    result = watch(runner, "delete", str(row.id), "--yes")
    assert result.output == f"deleted watch #{row.id} BTC/USDT 1h via rules:sma_cross\n"


def test_the_demo_watches_run_on_every_1h_close(runner, app, monkeypatch):
    monkeypatch.setattr("app.services.demo.DEMO_CANDLE_FILES", ())
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    lines = watch(runner, "list").output.splitlines()
    assert [line.split("  ")[1:3] for line in lines] == [
        ["BTC/USDT 1h on binance", "on every 1h close"],
        ["ETH/USDT 1h on binance", "on every 1h close"],
    ]
    # The demo account trades on its own, so a fresh install shows paper positions opening and closing.
    assert all("rules:ema_rsi_volume" in line and "auto-execute  enabled  never run" in line for line in lines)
    assert {w.cadence_minutes for w in db.session.scalars(select(Watch))} == {60}


def test_run_now_analyses_the_latest_closed_replay_bar_once(runner, owner):
    added = watch(runner, "add", "ETH/USDT", "--timeframe", "1h", "--signals", "rules:sma_cross")
    assert added.exit_code == 0, added.output
    watch_id = only_watch().id
    first = watch(runner, "run", str(watch_id))
    assert first.exit_code == 0, first.output
    # A fresh replay starts at 2024-01-16 05:00 (replay time): its latest closed 1h bar opened at 04:00.
    assert re.fullmatch(
        r"run #\d+ watch #\d+ ETH/USDT 1h \S+ bar 2024-01-16 04:00 UTC: (HOLD|BUY|SELL) \(confidence \d+\)\n",
        first.output,
    ), first.output
    again = watch(runner, "run", str(watch_id))
    assert again.output == first.output  # the same bar: the same run, no second analysis
    assert db.session.scalar(select(func.count()).select_from(WatchRun)) == 1
