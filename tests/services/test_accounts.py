"""The account use-cases called directly, on SQLite and PostgreSQL: risk settings shown, changed (validated, naming
the setting the user changed, audited) and the deliberate resume of an account the risk manager stopped."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.extensions import db
from app.models import Account, AuditEvent, Position
from app.services.accounts import RiskChange, change_risk_settings, resume_trading, risk_view
from risk import TradingState
from risk.config import MEANINGS
from tests import factories

NOW = datetime(2024, 1, 13, 9, 0, tzinfo=UTC)
HALT_REASON = "HALTED: MAX_DRAWDOWN: equity 98.93 <= 99.50 USDT (0.5% below the peak 100.00)"


@pytest.fixture
def owner(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    db.session.commit()
    return user, account


@pytest.fixture
def stranger(app):
    user = factories.user(db.session)
    db.session.commit()
    return user


def events(name):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)).all()


def change(user, account, set_=None, reset=()):
    return change_risk_settings(
        db.session, current_settings(), user.id, account.id, RiskChange(set=set_ or {}, reset=tuple(reset))
    )


def test_the_risk_view_lists_every_setting_with_its_default(owner):
    user, account = owner
    view = risk_view(db.session, user.id, account.id)
    assert view.account.id == account.id
    assert [setting.name for setting in view.settings] == list(MEANINGS)
    assert not any(setting.overridden for setting in view.settings)
    assert all(setting.meaning for setting in view.settings)
    assert (view.trading_state, view.state_reason) == (TradingState.ACTIVE, None)


def test_someone_elses_risk_view_is_not_found(owner, stranger):
    _, account = owner
    with pytest.raises(NotFoundError) as refusal:
        risk_view(db.session, stranger.id, account.id)
    assert (refusal.value.field, refusal.value.message) == ("account_id", f"no account #{account.id}")


def test_a_good_change_is_stored_shown_and_audited(owner):
    user, account = owner
    view = change(user, account, {"symbol_allowlist": "btc/usdt,ETH/USDT", "risk_per_trade_pct": "2"})
    db.session.commit()
    shown = {setting.name: setting for setting in view.settings}
    assert (shown["symbol_allowlist"].value, shown["symbol_allowlist"].overridden) == (("BTC/USDT", "ETH/USDT"), True)
    assert (shown["risk_per_trade_pct"].value, shown["risk_per_trade_pct"].overridden) == (Decimal(2), True)
    assert shown["max_stop_pct"].overridden is False

    db.session.expire_all()
    overrides = {"symbol_allowlist": "btc/usdt,ETH/USDT", "risk_per_trade_pct": "2"}
    assert db.session.get(Account, account.id).risk_settings == overrides
    [event] = events("account.risk_settings")
    assert (event.user_id, event.account_id, event.details["overrides"]) == (user.id, account.id, overrides)

    # Putting a setting back to its default is a change too, and audited as one.
    view = change(user, account, reset=["risk_per_trade_pct"])
    db.session.commit()
    assert {s.name: s for s in view.settings}["risk_per_trade_pct"].overridden is False
    assert db.session.get(Account, account.id).risk_settings == {"symbol_allowlist": "btc/usdt,ETH/USDT"}
    assert len(events("account.risk_settings")) == 2


@pytest.mark.parametrize(
    ("set_", "reset", "field", "message"),
    [
        ({}, ["foo"], "foo", 'unknown risk setting "foo"'),
        ({"trading_state": "ACTIVE"}, [], "trading_state", 'unknown risk setting "trading_state"'),
        ({"min_stop_pct": "12"}, [], "min_stop_pct", "min_stop_pct 12 conflicts with max_stop_pct 10"),
        (
            {"symbol_allowlist": "BTC/USTD"},
            [],
            "symbol_allowlist",
            "symbol_allowlist: unknown symbol 'BTC/USTD' on binance: not in the stored binance markets",
        ),
        ({"risk_per_trade_pct": "50"}, [], "risk_per_trade_pct", "must be in (0, 10] (got 50)"),
        ({"risk_per_trade_pct": "abc"}, [], "risk_per_trade_pct", 'must be a number (got "abc")'),
    ],
)
def test_a_bad_change_names_the_setting_the_user_changed_and_stores_nothing(owner, set_, reset, field, message):
    user, account = owner
    with pytest.raises(InvalidInputError) as refusal:
        change(user, account, set_, reset)
    assert refusal.value.field == field
    assert message in refusal.value.message
    assert "Decimal(" not in refusal.value.message
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {}
    assert events("account.risk_settings") == []


def test_a_conflict_names_both_settings(owner):
    user, account = owner
    with pytest.raises(InvalidInputError) as refusal:
        change(user, account, {"min_stop_pct": "12"})
    assert refusal.value.field == "min_stop_pct"
    assert "max_stop_pct" in refusal.value.message
    assert refusal.value.details == {"conflicts_with": "max_stop_pct"}


def test_someone_else_cannot_change_the_risk_settings(owner, stranger):
    _, account = owner
    with pytest.raises(NotFoundError):
        change(stranger, account, {"min_confidence": "10"})
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {}
    assert events("account.risk_settings") == []


def stop(account, state=TradingState.HALTED, reason=HALT_REASON):
    """What the risk manager's kill switch leaves behind: the state, a peak above the equity, the audited reason."""
    account.trading_state = state
    account.peak_equity = Decimal("120")
    db.session.add(
        AuditEvent(
            user_id=account.user_id,
            account_id=account.id,
            event="account.trading_state",
            message=reason,
            details={"state": state.value},
        )
    )
    db.session.commit()


@pytest.mark.parametrize("state", [TradingState.HALTED, TradingState.REDUCING])
def test_resuming_a_stopped_account_makes_it_active_from_its_equity_now(owner, state):
    user, account = owner
    reason = HALT_REASON.replace("HALTED", state.value, 1)
    stop(account, state, reason)
    view = risk_view(db.session, user.id, account.id)
    why = reason.removeprefix(f"{state.value}: ")  # shown beside the state, so not repeated in the reason
    assert (view.trading_state, view.state_reason) == (state, why)

    resumed = resume_trading(db.session, user.id, account.id, NOW)
    db.session.commit()
    assert (resumed.previous_state, resumed.previous_reason, resumed.peak_equity) == (state, why, Decimal(100))

    db.session.expire_all()
    stored = db.session.get(Account, account.id)
    assert (stored.trading_state, stored.peak_equity) == (TradingState.ACTIVE, Decimal(100))
    halted, active = events("account.trading_state")
    assert halted.message == reason
    assert active.message.startswith(f"ACTIVE: resumed by its owner (was {reason})")
    assert "drawdown measured from 100 USDT" in active.message
    assert (active.user_id, active.account_id) == (user.id, account.id)
    assert active.details == {"previous_state": state.value, "resumed_at": NOW.isoformat()}
    assert risk_view(db.session, user.id, account.id).state_reason is None


def test_the_new_peak_counts_open_positions_at_cost(owner):
    user, account = owner
    account.current_balance = Decimal("63.32")
    db.session.add(
        Position(
            account_id=account.id,
            symbol="BTC/USDT",
            quantity=Decimal("0.00084"),
            entry_price=Decimal("43624"),
            cost_basis=Decimal("36.68"),
        )
    )
    stop(account)
    resumed = resume_trading(db.session, user.id, account.id, NOW)
    db.session.commit()
    assert resumed.peak_equity == Decimal("100.00")
    db.session.expire_all()
    assert db.session.get(Account, account.id).peak_equity == Decimal("100.00")


def test_resuming_an_active_account_is_a_conflict_and_audits_nothing(owner):
    user, account = owner
    with pytest.raises(ConflictError) as refusal:
        resume_trading(db.session, user.id, account.id, NOW)
    assert (refusal.value.field, refusal.value.message) == ("trading_state", f"account #{account.id} is already ACTIVE")
    db.session.commit()
    assert events("account.trading_state") == []


def test_resuming_twice_is_a_conflict_the_second_time(owner):
    user, account = owner
    stop(account)
    resume_trading(db.session, user.id, account.id, NOW)
    db.session.commit()
    with pytest.raises(ConflictError):
        resume_trading(db.session, user.id, account.id, NOW)
    assert len(events("account.trading_state")) == 2


def test_someone_else_cannot_resume_an_account(owner, stranger):
    _, account = owner
    stop(account)
    with pytest.raises(NotFoundError) as refusal:
        resume_trading(db.session, stranger.id, account.id, NOW)
    assert refusal.value.field == "account_id"
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Account, account.id)
    assert (stored.trading_state, stored.peak_equity) == (TradingState.HALTED, Decimal(120))
    assert len(events("account.trading_state")) == 1
