"""The dashboard's read side on SQLite and PostgreSQL: the equity curve rebuilt from fills and stored closes ends at
the equity the risk manager sees; each signal says what became of it (filled, refused with its codes, advice,
hold, failed); dust left by a closed position is listed."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.errors import NotFoundError
from app.extensions import db
from app.models import AnalysisStatus, Decision, Position, PositionStatus, Trade
from app.services import dashboard, overview, replay
from app.services.equity_curve import equity_curve
from exchanges.orders import OrderSide
from tests import factories
from tests.services.test_overview import BUY_BAR, ENTRY, FEE, QUANTITY, STOP_BAR, replay_close, run, store_market

HOUR = timedelta(hours=1)


@pytest.fixture
def trader(app):
    user = factories.user(db.session, password=None)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion", auto_execute=True)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, account, watch


def test_the_curve_marks_cash_plus_btc_at_each_hours_close_and_ends_at_the_dashboards_equity(trader):
    user, account, watch = trader
    run(watch, BUY_BAR)
    [buy] = db.session.scalars(select(Trade)).all()
    [view] = overview.account_overviews(db.session, store_market(), user.id)
    [held] = view.positions

    curve = equity_curve(db.session, user.id, account.id, view.equity, held.quote.at)

    points = curve.points
    assert curve.currency == "USDT"
    assert (points[0].at, points[0].equity) == (buy.executed_at - HOUR, Decimal(100))
    assert all(earlier.at < later.at for earlier, later in itertools.pairwise(points))
    cash = Decimal(100) - QUANTITY * ENTRY - FEE
    # A day after the buy, on the hour: cash plus the BTC at that hour's close (the bar that opened an hour before).
    mark = buy.executed_at + 24 * HOUR
    [point] = [p for p in points if p.at == mark]
    assert point.equity == cash + QUANTITY * replay_close(mark - HOUR)
    assert (points[-1].at, points[-1].equity) == (held.quote.at, view.equity)
    assert len(points) <= 1502  # months of hours are sampled, not sent whole


def test_after_the_stop_the_curve_is_flat_at_the_cash_left(trader):
    user, account, watch = trader
    run(watch, BUY_BAR)
    run(watch, STOP_BAR)
    sell = db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).one()
    final = Decimal(100) + sell.realized_pnl

    curve = equity_curve(db.session, user.id, account.id, final, None)

    after = [p for p in curve.points if p.at >= sell.executed_at]
    assert after and {p.equity for p in after} == {final}
    assert curve.points[-1].at == sell.executed_at


def test_an_account_without_fills_has_no_curve_and_another_users_account_is_not_found(trader):
    user, account, _ = trader
    assert equity_curve(db.session, user.id, account.id, Decimal(100), None).points == []
    stranger = factories.user(db.session, password=None)
    with pytest.raises(NotFoundError):
        equity_curve(db.session, stranger.id, account.id, Decimal(100), None)
    with pytest.raises(NotFoundError):
        dashboard.account_equity(db.session, current_settings(), stranger.id, account.id)


def test_each_signal_says_what_became_of_it(trader):
    user, account, watch = trader
    run(watch, BUY_BAR)
    filled = dashboard.latest_signals(db.session, user.id)[0]
    assert (filled.action, filled.outcome) == ("BUY", "filled")
    assert filled.text == "approved, buy filled 0.00084 BTC at 43,624.00"
    assert filled.order is not None and filled.order.filled_quantity == QUANTITY

    refused = factories.analysis(db.session, user, account, signal={"action": "BUY", "confidence": 70})
    db.session.add(
        Decision(
            analysis_id=refused.id,
            account_id=account.id,
            approved=False,
            reasons=[{"code": "MAX_OPEN_POSITIONS", "message": "1 of 1 open"}, {"code": "KILL_SWITCH"}],
        )
    )
    advice = factories.analysis(db.session, user, signal={"action": "SELL", "confidence": 55})
    hold = factories.analysis(db.session, user, account)
    failed = factories.analysis(
        db.session, user, status=AnalysisStatus.FAILED, signal=None, error_code="BUDGET_EXCEEDED"
    )
    db.session.commit()

    lines = {line.analysis.id: line for line in dashboard.latest_signals(db.session, user.id)}
    assert (lines[refused.id].outcome, lines[refused.id].text) == (
        "refused",
        "refused: MAX_OPEN_POSITIONS, KILL_SWITCH",
    )
    assert (lines[advice.id].outcome, lines[advice.id].text) == ("advice", "advice only: no account judged it")
    assert (lines[hold.id].outcome, lines[hold.id].text) == ("hold", "hold: no trade")
    assert (lines[failed.id].outcome, lines[failed.id].text) == ("failed", "no signal: BUDGET_EXCEEDED")
    assert [line.analysis.id for line in dashboard.latest_signals(db.session, user.id, limit=2)] == [
        failed.id,
        hold.id,
    ]


def test_the_dashboard_lists_dust_and_the_budgets(trader):
    user, account, _ = trader
    db.session.add(
        Position(
            account_id=account.id,
            symbol="BTC/USDT",
            status=PositionStatus.CLOSED,
            quantity=Decimal(0),
            entry_price=ENTRY,
            dust_quantity=Decimal("0.00000916"),
            dust_value=Decimal("0.39"),
            closed_at=datetime(2024, 1, 13, tzinfo=UTC),
        )
    )
    db.session.commit()
    view = dashboard.dashboard(db.session, current_settings(), user.id, datetime(2030, 5, 1, tzinfo=UTC))
    [line] = view.dust
    assert (line.quantity, line.value, line.account.id) == (Decimal("0.00000916"), Decimal("0.39"), account.id)
    assert [period.name for period in view.budgets] == ["today", "this month"]
    assert view.replay is not None  # the test app's scheduler market is the replay
    assert [summary.overview.account.id for summary in view.accounts] == [account.id]


def test_every_dashboard_reads_the_one_loaded_replay(trader, monkeypatch):
    """A page per request must not load the bundled candles per request (it did: ~0.3 s and ~80,000 candles more
    held in memory each time, until the worker ran out of memory)."""
    user = trader[0]
    loads = []
    real_load = replay.load_replay_market
    monkeypatch.setattr(replay, "load_replay_market", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    monkeypatch.setattr(replay, "_markets", {})
    wall = itertools.repeat(datetime(2030, 5, 1, 9, tzinfo=UTC)).__next__
    for minute in range(3):
        dashboard.dashboard(db.session, current_settings(), user.id, datetime(2030, 5, 1, 9, minute, tzinfo=UTC), wall)
    assert len(loads) == 1


def test_the_loaded_replays_stay_few_whatever_clocks_ask(app, monkeypatch):
    monkeypatch.setattr(replay, "_markets", {})
    for hour in range(replay.MARKETS_KEPT + 2):
        replay.replay_market(
            db.session, current_settings(), itertools.repeat(datetime(2030, 5, 1, hour, tzinfo=UTC)).__next__
        )
    assert len(replay._markets) == replay.MARKETS_KEPT
