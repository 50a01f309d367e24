"""An account's clock only moves forward (issue 9, item 6), on SQLite and PostgreSQL: upkeep walks every bar between
the last one the account processed and the new one, stop first, trailing stops bar by bar; cooldowns use bar time;
executing at an earlier bar is refused before any signal is asked for.

rules:rsi_reversion on BTC/USDT 1h: BUY at 2024-01-12 16:00 (entry 43,624.00, stop 42,434.55, take profit
46,002.89); the 22:00 bar's low (41,500.00) touches the stop, six hours after entry.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import current_settings
from app.extensions import db
from app.models import Account, Analysis, AuditEvent, Position, PositionStatus, Trade
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.trading import AccountClockError
from exchanges.candles import read_candle_csv
from exchanges.orders import OrderSide
from risk import MarketLimits, OpenPosition, RiskConfig, update_stops
from tests import factories
from tests.conftest import PROJECT_ROOT

D = Decimal
CSV = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)
ENTRY, STOP, QUANTITY = D("43624"), D("42434.55"), D("0.00084")


@pytest.fixture
def trader(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    factories.candles(db.session, CSV)
    db.session.commit()
    return user, account


def analyse(user, account, until=None, execute=True):
    request = AnalysisRequest(
        user_id=user.id,
        symbol="BTC/USDT",
        timeframe="1h",
        signals="rules:rsi_reversion",
        account_id=account.id,
        until=until,
        execute=execute,
    )
    return run_analysis(
        db.session, current_settings(), request, signal_services(db.session, current_settings(), user.id)
    )


def test_a_jump_to_the_latest_bar_books_the_stop_touched_six_hours_after_entry(trader):
    user, account = trader
    analyse(user, account, BUY_BAR)  # README: analyze ... --until "2024-01-12 16:00" --execute
    result = analyse(user, account)  # then a plain analyze ... --execute: the latest stored bar, 2024-09-06 03:00

    assert result.trade.notes[0] == (
        "BTC/USDT, bar opened 2024-01-12 22:00 UTC: STOP_HIT: low 41,500.00 <= stop 42,434.55 USDT: exit at 42,434.55"
    )
    sell = db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).one()
    # Filled at the stop and stamped with the close of the bar that touched it, not at the 2024-09 open 56,532.00.
    assert (sell.price, sell.executed_at) == (STOP, datetime(2024, 1, 12, 23, tzinfo=UTC))
    fees = QUANTITY * ENTRY * D("0.001") + QUANTITY * STOP * D("0.001")
    assert abs(sell.realized_pnl - ((STOP - ENTRY) * QUANTITY - fees)) <= D("1e-9")  # -1.07 USDT, not +10.76
    db.session.expire_all()
    assert db.session.get(Account, account.id).last_bar_at == datetime(2024, 9, 6, 4, tzinfo=UTC)


def test_the_cooldown_after_a_loss_runs_on_bar_time(trader):
    user, account = trader
    analyse(user, account, BUY_BAR)
    # The stop exit on the 22:00 bar is stamped 23:00; the same bar's BUY (confidence 65) is judged at 23:00 too.
    result = analyse(user, account, datetime(2024, 1, 12, 22, tzinfo=UTC))
    [reason] = result.trade.decision.reasons
    assert (reason["code"], reason["message"]) == (
        "COOLDOWN_AFTER_LOSS",
        "last loss at 2024-01-12 23:00 UTC: 60 of 60 cooldown minutes left (until 2024-01-13 00:00 UTC)",
    )
    # One bar later the hour is over, by the bars' clock (the wall clock is years later either way).
    later = analyse(user, account, datetime(2024, 1, 12, 23, tzinfo=UTC))
    assert later.trade.decision.approved


def test_executing_at_a_bar_before_the_account_clock_is_refused_before_any_signal(trader):
    user, account = trader
    analyse(user, account, datetime(2024, 1, 13, 3, tzinfo=UTC))
    analyses_before = db.session.scalar(select(func.count()).select_from(Analysis))

    with pytest.raises(AccountClockError) as refused:
        analyse(user, account, BUY_BAR)
    assert refused.value.field == "until"
    assert str(refused.value) == (
        f"account #{account.id} ({account.name}) has already traded up to the bar closing 2024-01-13 04:00 UTC; "
        "it cannot execute at the earlier bar closing 2024-01-12 17:00 UTC (analyse without execute to see the advice)"
    )
    assert db.session.scalar(select(func.count()).select_from(Analysis)) == analyses_before

    advice = analyse(user, account, BUY_BAR, execute=False)
    assert advice.trade.notes == ["the account's clock is at 2024-01-13 04:00 UTC: advice only, nothing updated"]
    db.session.expire_all()
    assert db.session.get(Account, account.id).last_bar_at == datetime(2024, 1, 13, 4, tzinfo=UTC)


def test_a_trailing_stop_moves_bar_by_bar_as_the_risk_manager_rules(trader):
    user, account = trader
    account.risk_settings = {"trailing_stop_pct": "1.5"}
    db.session.commit()
    analyse(user, account, BUY_BAR)
    position = db.session.scalars(select(Position)).one()
    until = datetime(2024, 1, 13, 12, tzinfo=UTC)
    result = analyse(user, account, until)

    # The oracle: the risk manager's own rule applied to each stored bar after entry, in order.
    limits = MarketLimits("BTC/USDT", "BTC", "USDT", D("0.00001"), D("0.01"), D("0.00001"), D(5), D("0.001"))
    held = OpenPosition("BTC/USDT", QUANTITY, ENTRY, STOP, D("46002.89"), ENTRY)
    exit_price = None
    for candle in read_candle_csv(PROJECT_ROOT / "data" / "candles" / CSV, "1h"):
        if not BUY_BAR < candle.open_time <= until:
            continue
        update = update_stops(
            held, candle.high, candle.low, candle.close, RiskConfig(trailing_stop_pct=D("1.5")), limits, candle.open
        )
        held = OpenPosition("BTC/USDT", QUANTITY, ENTRY, update.stop_loss, D("46002.89"), update.highest_price)
        if update.exit_price is not None:
            exit_price = update.exit_price
            break
    db.session.expire_all()
    position = db.session.get(Position, position.id)
    sell = db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).one_or_none()
    assert exit_price is not None and sell is not None and sell.price == exit_price
    assert position.status is PositionStatus.CLOSED and position.stop_loss == held.stop_loss
    raised = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "position.stop_raised")).all()
    # One event for the walk, not one per bar: 42,434.55 -> 1.5% under the highest high seen before the exit.
    assert [event.message for event in raised] == [
        f"BTC/USDT: trailing stop raised 42,434.55 -> {held.stop_loss:,.2f} USDT (3 raises over 5 bars)"
    ]
    assert any(note.startswith("BTC/USDT: trailing stop raised") for note in result.trade.notes)


def test_advice_without_execute_sends_no_exit_and_leaves_the_clock(trader):
    user, account = trader
    analyse(user, account, BUY_BAR)
    # The 22:00 bar touches the stop, but without execute nothing is sold, closed or moved.
    result = analyse(user, account, datetime(2024, 1, 12, 23, tzinfo=UTC), execute=False)
    assert result.trade.notes == ["advice only: open positions (BTC/USDT) are kept up to date with execute"]
    db.session.expire_all()
    assert db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).all() == []
    assert db.session.scalars(select(Position)).one().status is PositionStatus.OPEN
    assert db.session.get(Account, account.id).last_bar_at == datetime(2024, 1, 12, 17, tzinfo=UTC)


def test_advice_at_an_earlier_bar_does_not_see_a_later_loss(trader):
    user, account = trader
    analyse(user, account, BUY_BAR)
    analyse(user, account)  # books the loss at 2024-01-12 23:00 and moves the clock to 2024-09-06
    advice = analyse(user, account, BUY_BAR, execute=False)
    codes = [reason["code"] for reason in advice.trade.decision.reasons]
    assert "COOLDOWN_AFTER_LOSS" not in codes and advice.trade.decision.approved, codes
