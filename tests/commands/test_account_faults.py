"""Faults found by trying the product as a new user would: risk settings that blame the wrong setting or accept
nonsense, a HALTED account nobody could resume, and `account risk` on someone else's account."""

import json

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Account, AuditEvent
from risk import TradingState
from tests import factories

BTC_2024_1H = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
# rules:rsi_reversion on BTC/USDT 1h: a BUY at 16:00 (entry 43,624, stop 42,434.55), the stop is hit at 22:00.
BUY_BAR, STOP_BAR = "2024-01-12 16:00", "2024-01-12 22:00"


def make_user(email):
    user = factories.user(db.session, email=email)
    account = factories.paper_account(db.session, user, name="Paper")
    db.session.commit()
    return user, account


@pytest.fixture
def owner(app):
    return make_user("owner@example.com")


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def risk_events():
    return db.session.scalars(select(AuditEvent).where(AuditEvent.event == "account.risk_settings")).all()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        # The user changed min_stop_pct: name it, and the setting it conflicts with.
        (
            "min_stop_pct=12",
            "min_stop_pct 12 conflicts with max_stop_pct 10: the stops need min_stop_pct < max_stop_pct < 100",
        ),
        (
            "symbol_allowlist=BTC/USTD",
            "symbol_allowlist: unknown symbol 'BTC/USTD' on binance: not in the stored binance markets "
            "(bundled snapshot",
        ),
        ("risk_per_trade_pct=50", "risk setting risk_per_trade_pct: must be in (0, 10] (got 50)"),
        ("risk_per_trade_pct=abc", 'risk setting risk_per_trade_pct: must be a number (got "abc")'),
        ("trading_state=ACTIVE", 'unknown risk setting "trading_state"'),
    ],
)
def test_a_bad_risk_setting_names_what_the_user_changed_and_stores_nothing(app, owner, setting, message):
    _, account = owner
    result = cli(app, "account", "risk", str(account.id), "--set", setting)
    assert result.exit_code == 1
    assert message in result.output
    assert "Decimal(" not in result.output and len(result.output.strip().splitlines()) == 1
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {}
    assert risk_events() == []


def test_resetting_an_unknown_setting_is_refused_and_not_audited(app, owner):
    _, account = owner
    result = cli(app, "account", "risk", str(account.id), "--reset", "foo")
    assert result.exit_code == 1 and 'unknown risk setting "foo"' in result.output
    assert risk_events() == []


def test_a_good_change_is_stored_and_audited(app, owner):
    _, account = owner
    result = cli(app, "account", "risk", str(account.id), "--set", "symbol_allowlist=btc/usdt,ETH/USDT")
    assert result.exit_code == 0, result.output
    assert "* symbol_allowlist         BTC/USDT,ETH/USDT" in result.output
    [event] = risk_events()
    assert event.details["overrides"] == {"symbol_allowlist": "btc/usdt,ETH/USDT"}


def test_someone_elses_account_is_not_found(app, owner):
    make_user("other@example.com")
    _, account = owner
    result = cli(app, "account", "risk", str(account.id), "--user", "other@example.com", "--set", "min_confidence=10")
    assert result.exit_code == 1 and f"no account #{account.id}" in result.output
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {}


def analyze(app, account, until):
    result = cli(
        app,
        *("analyze", "BTC/USDT", "--signals", "rules:rsi_reversion", "--account", str(account.id)),
        *("--until", until, "--execute", "--json"),
    )
    return json.loads(result.output)


def test_a_halted_account_shows_why_and_its_owner_resumes_it(app, owner):
    _, account = owner
    factories.candles(db.session, BTC_2024_1H)
    db.session.commit()
    cli(app, "account", "risk", str(account.id), "--set", "max_drawdown_pct=0.5")
    assert analyze(app, account, BUY_BAR)["decision"]["order"]["status"] == "closed"
    after_stop = analyze(app, account, STOP_BAR)
    assert any(note.startswith("trading state -> HALTED") for note in after_stop["decision"]["notes"])

    shown = cli(app, "account", "risk", str(account.id))
    assert shown.output.startswith("trading state  HALTED  (MAX_DRAWDOWN: ")
    assert "MAX_DRAWDOWN: equity 98.93 <= 99.50 USDT (0.5% below the peak 100.00)" in shown.output.splitlines()[0]
    assert f"account resume {account.id}" in shown.output

    # Lowering the kill switch's threshold is no way out: only the deliberate resume is.
    cli(app, "account", "risk", str(account.id), "--reset", "max_drawdown_pct")
    db.session.expire_all()
    assert db.session.get(Account, account.id).trading_state is TradingState.HALTED

    resumed = app.test_cli_runner().invoke(args=["account", "resume", str(account.id)], input="y\n")
    assert resumed.exit_code == 0, resumed.output
    assert f"account #{account.id} is HALTED: MAX_DRAWDOWN: " in resumed.output
    assert "ACTIVE again; drawdown is measured from 98." in resumed.output
    db.session.expire_all()
    stored = db.session.get(Account, account.id)
    assert stored.trading_state is TradingState.ACTIVE and stored.peak_equity == stored.current_balance
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "account.trading_state")).all()
    assert [e.message.split(":")[0] for e in events] == ["HALTED", "ACTIVE"]
    assert "resumed by its owner (was HALTED" in events[-1].message
    assert cli(app, "account", "risk", str(account.id)).output.startswith("trading state  ACTIVE\n")

    again = cli(app, "account", "resume", str(account.id), "--yes")
    assert again.exit_code == 1 and f"account #{account.id} is already ACTIVE" in again.output


def test_a_paper_account_has_no_base_url_and_the_error_names_the_account(app, owner):
    _, account = owner
    result = cli(app, "account", "base-url", str(account.id), "--clear")
    assert (result.exit_code, result.output) == (
        1,
        f"Error: account #{account.id} is a paper account: it sends no exchange requests [ACCOUNT_ID]\n",
    )
