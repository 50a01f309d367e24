"""The kill switch at its service, on SQLite and PostgreSQL: the global switch refuses the rules BUY at 16:00 with a
coded KILL_SWITCH reason and sends nothing, while an open position's stop still sells; it is stored (a new app sees
it) and audited without an account; an account's own switch is HALTED with its reason, released by resume."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import create_app, current_settings
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.extensions import db
from app.models import Account, AuditEvent, Decision, NotificationDelivery, Order, Position, PositionStatus, Trade
from app.services import kill_switch
from app.services.accounts import resume_trading, risk_view
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.notification_channels import add_webhook_channel
from exchanges.orders import OrderSide
from risk import TradingState
from tests import factories
from tests.conftest import clean_environ

BUY_BAR = datetime(2024, 1, 12, 16, 0, tzinfo=UTC)
STOP_BAR = datetime(2024, 1, 12, 22, 0, tzinfo=UTC)
STOP = Decimal("42434.55")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 11, 5, tzinfo=UTC)
REFUSAL = (
    "the global kill switch is engaged since 2026-03-02 09:30 UTC by ops@example.com: exchange incident: "
    "no new positions, exits only"
)


@pytest.fixture
def trader(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, account


def analyse(user, account_id, until=BUY_BAR):
    request = AnalysisRequest(
        user_id=user.id,
        symbol="BTC/USDT",
        timeframe="1h",
        signals="rules:rsi_reversion",
        account_id=account_id,
        until=until,
        execute=True,
    )
    services = signal_services(db.session, current_settings(), user.id)
    return run_analysis(db.session, current_settings(), request, services)


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def engage():
    state = kill_switch.engage_global(db.session, "exchange  incident", "ops@example.com", NOW)
    db.session.commit()
    return state


def test_the_global_switch_refuses_an_opening_with_who_when_and_why_and_sends_nothing(trader):
    user, account = trader
    assert kill_switch.global_state(db.session) is None
    assert engage() == kill_switch.KillSwitchState(True, "exchange incident", NOW, "ops@example.com")

    result = analyse(user, account.id)

    assert result.trade.order is None
    db.session.expire_all()
    decision = db.session.scalars(select(Decision)).one()
    assert decision.approved is False and decision.order_spec is None
    assert decision.reasons == [
        {
            "code": "KILL_SWITCH",
            "message": REFUSAL,
            "values": {"by": "ops@example.com", "since": NOW.isoformat(), "reason": "exchange incident"},
        }
    ]
    assert (count(Order), count(Trade), count(Position)) == (0, 0, 0)
    assert db.session.get(Account, account.id).current_balance == Decimal(100)


def test_a_stop_exit_still_sells_while_the_global_switch_is_engaged(trader):
    user, account = trader
    analyse(user, account.id)  # the BUY at 16:00, before the switch
    engage()

    result = analyse(user, account.id, until=STOP_BAR)

    assert any("STOP_HIT" in note for note in result.trade.notes)
    db.session.expire_all()
    assert db.session.scalars(select(Position)).one().status is PositionStatus.CLOSED
    sell = db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).one()
    assert sell.price == STOP


def test_release_lets_openings_through_again_and_both_are_audited_without_an_account(trader):
    user, account = trader
    engage()
    released = kill_switch.release_global(db.session, "lead@example.com", LATER)
    db.session.commit()

    assert released == kill_switch.KillSwitchState(False, None, LATER, "lead@example.com")
    assert kill_switch.global_state(db.session) == released
    assert kill_switch.opening_refusal(db.session) is None
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.event, e.message, e.user_id, e.account_id, e.occurred_at) for e in events] == [
        ("kill_switch.global", "ENGAGED by ops@example.com: exchange incident", None, None, NOW),
        (
            "kill_switch.global",
            "RELEASED by lead@example.com (engaged 2026-03-02 09:30 UTC by ops@example.com: exchange incident)",
            None,
            None,
            LATER,
        ),
    ]
    result = analyse(user, account.id)
    assert result.trade.decision.approved is True and result.trade.order is not None


def test_the_switch_survives_a_restart(trader):
    engage()
    db.session.remove()
    settings = current_settings()
    fresh = create_app(environ=clean_environ(settings.instance_path, settings.database_url))
    with fresh.app_context():
        try:
            assert kill_switch.global_state(db.session) == kill_switch.KillSwitchState(
                True, "exchange incident", NOW, "ops@example.com"
            )
        finally:
            db.session.remove()
            db.engine.dispose()


def test_engaging_twice_or_releasing_what_is_off_is_a_conflict_and_input_is_checked(app):
    with pytest.raises(ConflictError, match=r"^the global kill switch is not engaged$"):
        kill_switch.release_global(db.session, "ops", NOW)
    with pytest.raises(InvalidInputError, match=r"^reason must not be empty$") as empty:
        kill_switch.engage_global(db.session, "  ", "ops", NOW)
    assert empty.value.field == "reason"
    with pytest.raises(InvalidInputError, match=r"^by must be at most 120 characters, got 121$"):
        kill_switch.engage_global(db.session, "x", "o" * 121, NOW)
    engage()
    with pytest.raises(ConflictError) as twice:
        kill_switch.engage_global(db.session, "again", "ops", LATER)
    assert twice.value.message == (
        "the global kill switch is already engaged (since 2026-03-02 09:30 UTC by ops@example.com: exchange incident)"
    )
    assert twice.value.field == "kill_switch"


def test_an_account_switch_halts_it_with_its_reason_until_it_is_resumed(trader):
    user, account = trader
    add_channel_for(user)
    halted = kill_switch.engage_account(db.session, user.id, account.id, "going on holiday", NOW)
    db.session.commit()

    assert halted.trading_state is TradingState.HALTED
    view = risk_view(db.session, user.id, account.id)
    assert (view.trading_state, view.state_reason) == (TradingState.HALTED, "kill switch: going on holiday")
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.event, event.message, event.user_id, event.account_id) == (
        "account.trading_state",
        "HALTED: kill switch: going on holiday",
        user.id,
        account.id,
    )
    delivery = db.session.scalars(select(NotificationDelivery)).one()
    assert (delivery.event, delivery.payload) == (
        "account.trading_state",
        {"account_id": account.id, "trading_state": "HALTED", "message": "HALTED: kill switch: going on holiday"},
    )
    [item] = kill_switch.halted_accounts(db.session)
    assert (item.account.id, item.owner_email, item.reason) == (account.id, user.email, "kill switch: going on holiday")

    refused = analyse(user, account.id)
    assert refused.trade.order is None
    assert [r["code"] for r in refused.trade.decision.reasons] == ["TRADING_HALTED"]
    with pytest.raises(ConflictError, match=f"^account #{account.id} is already HALTED$"):
        kill_switch.engage_account(db.session, user.id, account.id, "again", NOW)

    resumed = resume_trading(db.session, user.id, account.id, LATER)
    db.session.commit()
    assert resumed.previous_state is TradingState.HALTED and resumed.previous_reason == "kill switch: going on holiday"
    assert kill_switch.halted_accounts(db.session) == []
    assert analyse(user, account.id).trade.order is not None


def test_someone_elses_account_cannot_be_halted(trader):
    _, account = trader
    other = factories.user(db.session)
    db.session.commit()
    with pytest.raises(NotFoundError):
        kill_switch.engage_account(db.session, other.id, account.id, "mine now", NOW)
    assert db.session.get(Account, account.id).trading_state is TradingState.ACTIVE


def add_channel_for(user):
    """A webhook channel, so that the notification is queued (nothing is sent in these tests)."""
    add_webhook_channel(db.session, current_settings(), user.id, "http://127.0.0.1:9/hook")
    db.session.commit()
