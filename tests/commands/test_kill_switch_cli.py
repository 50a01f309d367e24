"""`kill-switch status | on | off` on SQLite and PostgreSQL: exact output, confirmation before the global switch is
released, an account's switch released with `account resume`, and a refused BUY shown by `analyze`."""

from datetime import UTC, datetime

import pytest

from app.commands import kill_switch as command
from app.extensions import db
from tests import factories

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def trader(app, monkeypatch):
    monkeypatch.setattr(command, "system_clock", lambda: NOW)
    user = factories.user(db.session, email="trader@example.com")
    account = factories.paper_account(db.session, user, name="Paper")
    db.session.commit()
    return user, account


def run(runner, *args, **kwargs):
    return runner.invoke(args=["kill-switch", *args], **kwargs)


def test_the_global_switch_on_status_and_off_with_confirmation(runner, trader):
    assert run(runner, "status").output == "global kill switch: off\nhalted accounts: none\n"

    on = run(runner, "on", "--reason", "exchange incident", "--by", "ops")
    assert on.exit_code == 0, on.output
    assert on.output == (
        "global kill switch ENGAGED since 2026-03-02 09:30 UTC by ops: exchange incident\n"
        "new positions are refused on every account; exits, stops and take profits still run\n"
    )
    assert run(runner, "status").output == (
        "global kill switch: ENGAGED since 2026-03-02 09:30 UTC by ops: exchange incident\n"
        "  new positions are refused on every account; release with: flask --app wsgi kill-switch off\n"
        "halted accounts: none\n"
    )
    again = run(runner, "on", "--reason", "again", "--by", "ops")
    assert again.exit_code == 1
    assert again.output == (
        "Error: the global kill switch is already engaged (since 2026-03-02 09:30 UTC by ops: exchange incident)\n"
    )

    declined = run(runner, "off", "--by", "lead", input="n\n")
    assert declined.exit_code == 1
    assert declined.output == (
        "global kill switch: ENGAGED since 2026-03-02 09:30 UTC by ops: exchange incident\n"
        "Release it and let every account open positions again? [y/N]: n\n"
        "Aborted!\n"
    )
    assert run(runner, "status").output.startswith("global kill switch: ENGAGED")

    off = run(runner, "off", "--by", "lead", "--yes")
    assert off.exit_code == 0, off.output
    assert off.output == (
        "global kill switch: ENGAGED since 2026-03-02 09:30 UTC by ops: exchange incident\n"
        "global kill switch off (released 2026-03-02 09:30 UTC by lead)\n"
        "one account's kill switch is released with: flask --app wsgi account resume ID\n"
    )
    assert run(runner, "status").output == (
        "global kill switch: off (released 2026-03-02 09:30 UTC by lead)\nhalted accounts: none\n"
    )
    twice = run(runner, "off", "--yes", "--by", "lead")
    assert (twice.exit_code, twice.output) == (1, "Error: the global kill switch is not engaged\n")


def test_an_account_switch_is_listed_and_released_with_account_resume(runner, trader):
    _, account = trader
    on = run(runner, "on", "--reason", "going on holiday", "--account", str(account.id))
    assert on.exit_code == 0, on.output
    assert on.output == (
        f"account #{account.id} (Paper) is HALTED: kill switch: going on holiday\n"
        f"resume with: flask --app wsgi account resume {account.id}\n"
    )
    assert run(runner, "status").output == (
        "global kill switch: off\n"
        "halted accounts:\n"
        f"  #{account.id}  Paper (trader@example.com): kill switch: going on holiday\n"
        f"    resume with: flask --app wsgi account resume {account.id} --user trader@example.com\n"
    )
    risk = runner.invoke(args=["account", "risk", str(account.id)])
    assert risk.output.splitlines()[0] == "trading state  HALTED  (kill switch: going on holiday)"
    listed = runner.invoke(args=["account", "list"])
    assert listed.output.rstrip().endswith("HALTED")

    not_here = run(runner, "off", "--account", str(account.id))
    assert not_here.exit_code == 1
    assert not_here.output == (
        f"Error: one account's kill switch is released with: flask --app wsgi account resume {account.id} "
        "(it shows why the account stopped first)\n"
    )

    resumed = runner.invoke(args=["account", "resume", str(account.id), "--yes"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.splitlines()[0] == f"account #{account.id} is HALTED: kill switch: going on holiday"
    assert run(runner, "status").output == "global kill switch: off\nhalted accounts: none\n"


def test_errors_are_one_line_naming_the_option(runner, trader):
    _, account = trader
    empty = run(runner, "on", "--reason", " ", "--by", "ops")
    assert (empty.exit_code, empty.output) == (1, "Error: reason must not be empty [--reason]\n")
    missing = run(runner, "on", "--reason", "x", "--account", str(account.id + 99))
    assert missing.exit_code == 1 and missing.output.startswith("Error: ")
    assert len(missing.output.splitlines()) == 1


def test_analyze_shows_the_refused_buy_and_its_reason(runner, trader):
    _, account = trader
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    run(runner, "on", "--reason", "exchange incident", "--by", "ops")
    result = runner.invoke(
        args=[
            "analyze",
            "BTC/USDT",
            "--signals",
            "rules:rsi_reversion",
            "--account",
            str(account.id),
            "--until",
            "2024-01-12 16:00",
            "--execute",
        ]
    )
    assert result.exit_code == 0, result.output
    assert (
        "    KILL_SWITCH: the global kill switch is engaged since 2026-03-02 09:30 UTC by ops: exchange incident: "
        "no new positions, exits only"
    ) in result.output.splitlines()
