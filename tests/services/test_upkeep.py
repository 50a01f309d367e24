"""Position upkeep on a paper account, bar by bar, on SQLite and PostgreSQL: an exit worth less than the minimum
notional waits (exit-failed, no order) and goes through once the price allows; what no order can sell is dust."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import AuditEvent, Order, Position, PositionStatus
from app.services.exchanges import account_exchange
from app.services.upkeep import EXIT_BELOW_MIN_NOTIONAL, StepClock, walk_positions
from exchanges.candles import Candle
from risk import RiskConfig
from tests import factories

D = Decimal
HOUR = timedelta(hours=1)
OPENED = datetime(2024, 1, 12, 17, tzinfo=UTC)
STOP = D("42434.55")


def bar(hour, open_, high, low, close):
    return Candle(OPENED + hour * HOUR, D(open_), D(high), D(low), D(close), D(1))


# Hour 5 touches the stop (low 41,500); hour 6 closes at 46,000.00 (0.00011 BTC = 5.06 USDT there).
BARS = [bar(5, "42900", "43000", "41500", "42100"), bar(6, "42100", "46100", "42000", "46000")]


@pytest.fixture
def account(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user, last_bar_at=OPENED)
    db.session.commit()
    return account


def holding(account, quantity, cost_basis):
    position = Position(
        account_id=account.id,
        symbol="BTC/USDT",
        quantity=D(quantity),
        entry_price=D("43624"),
        cost_basis=D(cost_basis),
        stop_loss=STOP,
        take_profit=D("46002.89"),
        highest_price=D("43624"),
        opened_at=OPENED,
    )
    db.session.add(position)
    db.session.commit()
    return position


def walk(account, until_hour):
    until = OPENED + (until_hour + 1) * HOUR
    prices: dict[str, Decimal] = {"BTC/USDT": BARS[-1].close}
    clock = StepClock(until)
    exchange, book = account_exchange(db.session, current_settings(), account, prices.__getitem__, clock)

    def bars(symbol, after, last):
        return [candle for candle in BARS if after < candle.open_time + HOUR <= last]

    return walk_positions(db.session, account, exchange, book, RiskConfig(), bars, HOUR, until, clock, prices)


def test_an_exit_below_the_minimum_notional_waits_then_sells_what_it_can(account):
    # 0.00011988 BTC held (0.00012 bought, the fee taken in BTC): 0.00011 sellable = 4.67 USDT at the stop.
    position = holding(account, "0.00011988", "5.2414")
    notes = walk(account, 5)
    db.session.expire_all()
    held = db.session.get(Position, position.id)
    assert (held.status, held.exit_error_code, held.exit_attempts) == (
        PositionStatus.OPEN,
        EXIT_BELOW_MIN_NOTIONAL,
        0,
    )
    assert notes[-1] == (
        "BTC/USDT: exit failed (EXIT_BELOW_MIN_NOTIONAL): 0.00011 BTC = 4.67 USDT at 42,434.55 is below the "
        "5.00 USDT minimum order: the exit waits for a higher price; retried on the next bar"
    )
    assert db.session.scalars(select(Order)).all() == []  # nothing sent that the exchange would refuse

    walk(account, 6)  # 0.00011 x 46,000.00 = 5.06 USDT: sold at the close, the 0.00000988 left is dust
    db.session.expire_all()
    closed = db.session.get(Position, position.id)
    assert (closed.status, closed.exit_error_code, closed.dust_quantity) == (
        PositionStatus.CLOSED,
        None,
        D("0.00000988"),
    )
    [order] = db.session.scalars(select(Order)).all()
    assert (order.client_order_id, order.quantity, order.average_fill_price) == (
        f"sh{account.id}p{position.id}x1",
        D("0.00011"),
        D("46000"),
    )
    failed = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "position.exit_failed")).all()
    assert len(failed) == 1  # audited when it failed, not again on every bar it waited


def test_a_holding_below_one_amount_step_is_closed_as_dust_without_an_order(account):
    position = holding(account, "0.000009", "0.39")
    notes = walk(account, 5)
    db.session.expire_all()
    closed = db.session.get(Position, position.id)
    assert (closed.status, closed.dust_quantity, closed.dust_value, closed.realized_pnl) == (
        PositionStatus.CLOSED,
        D("0.000009"),
        D("0.38191095"),  # 0.000009 x 42,434.55, the stop it was closed at
        D("-0.39"),
    )
    assert notes[-1] == "BTC/USDT: 0.000009 BTC (0.382 USDT) cannot be sold: closed as dust"
    assert db.session.scalars(select(Order)).all() == []
