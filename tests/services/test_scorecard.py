"""The scorecard on SQLite and PostgreSQL: a hand-made market of eight 1h closes and a handful of signals with
exact expected hit rate, moves, hypothetical PnL, traded PnL, AI cost, buy-and-hold and the rules baseline; and the
pure arithmetic's invariants under hypothesis (hit rate in [0, 1], pending signals never counted)."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import current_settings
from app.errors import InvalidInputError
from app.extensions import db
from app.models import Decision, Order, Position, PositionStatus, Trade
from app.persistence.candles import import_candles
from app.services import scorecard
from app.services.scorecard_math import OutcomeStatus, SignalPoint, cumulative_pnl, outcome, tally
from exchanges.candles import Candle
from exchanges.orders import OrderSide, OrderStatus, OrderType
from tests import factories

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CLOSES = [100, 110, 99, 120, 90, 99, 100, 100]  # bar i opens at T0 + i h and closes at T0 + (i + 1) h
NOW = T0 + timedelta(hours=10)
AI = "deepseek:deepseek-chat"


def hour(i: int) -> datetime:
    return T0 + timedelta(hours=i)


def signal(action: str, horizon: int) -> dict:
    return {
        "action": action,
        "confidence": 60,
        "entry_price": None,
        "stop_loss": None,
        "take_profit": None,
        "horizon_bars": horizon,
        "reasoning": "test",
        "key_factors": [],
    }


def store_settings():
    settings = current_settings()
    return replace(settings, scheduler=replace(settings.scheduler, market="store"))


@pytest.fixture
def market(app):
    candles = [
        Candle(hour(i), Decimal(c), Decimal(c), Decimal(c), Decimal(c), Decimal(1)) for i, c in enumerate(CLOSES)
    ]
    import_candles(db.session, "testex", "XYZ/USDT", "1h", candles)
    user = factories.user(db.session, password=None)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, exchange_id="testex", symbol="XYZ/USDT", signal_source=AI)

    def analyse(bar: int, action: str, horizon: int, source: str = AI, watch_id=watch.id):
        return factories.analysis(
            db.session,
            user,
            account,
            exchange_id="testex",
            symbol="XYZ/USDT",
            bar_time=hour(bar),
            signal_source=source,
            provider=source.split(":")[0],
            model=source.split(":")[1],
            signal=signal(action, horizon),
            cost_usd=Decimal("0.01") if source == AI else Decimal(0),
            watch_id=watch_id,
        )

    bought = analyse(0, "BUY", 1)  # 100 -> 110: +10 %, hit; executed
    analyse(1, "BUY", 1)  # 110 -> 99: -10 %, miss; hypothetical 100 * (-0.1 - 0.002) = -10.2
    analyse(2, "HOLD", 1)  # costs, never scored
    analyse(3, "SELL", 1)  # 120 -> 90: +25 % the SELL's way, hit; hypothetical 24.8
    analyse(6, "BUY", 5)  # horizon ends at T0 + 12 h, after NOW: pending
    analyse(2, "SELL", 1, source="rules:sma_cross", watch_id=None)  # 99 -> 120: -21.2 %, miss (the baseline)
    decision = Decision(
        analysis_id=bought.id, account_id=account.id, approved=True, order_spec={"side": "buy", "quantity": "0.5"}
    )
    db.session.add(decision)
    db.session.flush()
    order = Order(
        account_id=account.id,
        decision_id=decision.id,
        client_order_id="sc-1",
        symbol="XYZ/USDT",
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        status=OrderStatus.CLOSED,
        quantity=Decimal("0.5"),
        filled_quantity=Decimal("0.5"),
    )
    position = Position(
        account_id=account.id,
        symbol="XYZ/USDT",
        status=PositionStatus.CLOSED,
        quantity=Decimal(0),
        entry_price=Decimal(100),
        realized_pnl=Decimal("1.5"),
        fees_paid=Decimal("0.2"),
        opened_at=hour(1),
        closed_at=hour(2),
    )
    db.session.add_all([order, position])
    db.session.flush()
    db.session.add(
        Trade(
            account_id=account.id,
            order_id=order.id,
            position_id=position.id,
            symbol="XYZ/USDT",
            side=OrderSide.BUY,
            quantity=Decimal("0.5"),
            price=Decimal(100),
            fee=Decimal("0.05"),
            fee_currency="USDT",
            fee_value=Decimal("0.05"),
            executed_at=hour(1),
        )
    )
    db.session.commit()
    return user, watch


def test_hand_made_scorecard_has_the_exact_numbers(market):
    user, watch = market
    card = scorecard.scorecard(db.session, store_settings(), user.id, wall=lambda: NOW)
    assert card.now == NOW and not card.replay
    ai = next(row for row in card.by_source if row.source == AI)
    s = ai.signals
    assert (s.buys, s.sells, s.resolved, s.pending, s.unpriced, s.hits) == (3, 1, 3, 1, 0, 2)
    assert s.hit_rate == Decimal(2) / 3
    assert s.average_move_pct == (Decimal(10) - Decimal(10) + Decimal(25)) / 3
    assert (s.hypothetical_pnl, s.advice_resolved) == (Decimal("14.6"), 2)  # -10.2 + 24.8; the fill is real PnL
    assert (ai.executed, ai.traded_pnl, ai.traded_fees, ai.open_positions) == (1, Decimal("1.5"), Decimal("0.2"), 0)
    assert (ai.ai_cost_usd, ai.analyses, ai.quote_currency) == (Decimal("0.05"), 5, "USDT")
    assert ai.net_after_ai == Decimal("1.5") + Decimal("14.6") - Decimal("0.05")
    hold = ai.buy_and_hold
    assert (hold.start, hold.end) == (hour(1), hour(5))  # first reference close .. last resolved horizon end
    assert hold.change_pct == Decimal(-10)  # 100 -> 90
    assert hold.pnl == Decimal("-10.2")
    rules = ai.rules
    assert (rules.sells, rules.resolved, rules.hits, rules.hit_rate) == (1, 1, 0, Decimal(0))
    assert rules.average_move_pct == Decimal("-21.21212121")  # -(120 / 99 - 1) x 100, to 8 places
    [by_watch] = card.by_watch
    assert (by_watch.watch_id, by_watch.label) == (watch.id, f"#{watch.id} XYZ/USDT 1h")
    assert by_watch.signals == s and by_watch.ai_cost_usd == Decimal("0.05")
    assert card.pending == 1
    # Following every scored signal (the executed one too) with the standard stake, at each horizon's end.
    assert card.curves[AI] == [(hour(2), Decimal("9.8")), (hour(3), Decimal("-0.4")), (hour(5), Decimal("24.4"))]
    label, hold_points = card.hold
    assert label == "XYZ/USDT 1h"
    assert hold_points == [
        (hour(i + 1), Decimal(v)) for i, v in enumerate(["-0.2", "9.8", "-1.2", "19.8", "-10.2"])
    ]  # 100 x (close / 100 - 1 - 0.002) from 01:00 through 05:00


def test_the_window_picks_bars_and_refuses_an_empty_one(market):
    user, _ = market
    card = scorecard.scorecard(db.session, store_settings(), user.id, since=date(2024, 1, 2), wall=lambda: NOW)
    assert card.by_source == [] and card.by_watch == []
    with pytest.raises(InvalidInputError) as refused:
        scorecard.scorecard(db.session, store_settings(), user.id, date(2024, 2, 1), date(2024, 1, 1))
    assert refused.value.field == "since" and "2024-02-01" in refused.value.message


def test_another_users_signals_are_never_counted(market):
    other = factories.user(db.session, password=None)
    db.session.commit()
    card = scorecard.scorecard(db.session, store_settings(), other.id, wall=lambda: NOW)
    assert card.by_source == [] and card.by_watch == [] and card.pending == 0


def test_a_missing_close_is_unpriced_not_counted(market):
    user, _ = market
    later = NOW + timedelta(days=3)  # every horizon has passed, but S4's end close (T0 + 12 h) is not stored
    ai = next(r for r in scorecard.scorecard(db.session, store_settings(), user.id, wall=lambda: later).by_source)
    assert (ai.signals.resolved, ai.signals.pending, ai.signals.unpriced) == (3, 0, 1)


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=4)
points = st.builds(
    SignalPoint,
    analysis_id=st.integers(1, 1000),
    action=st.sampled_from(["BUY", "SELL"]),
    exchange_id=st.just("x"),
    symbol=st.just("A/USDT"),
    timeframe=st.sampled_from(["1h", "4h", "1d"]),
    bar_time=st.datetimes(datetime(2020, 1, 1), datetime(2026, 1, 1), timezones=st.just(UTC)),
    horizon_bars=st.integers(1, 500),
)


@given(st.lists(st.tuples(points, prices, st.none() | prices), max_size=30), st.datetimes(timezones=st.just(UTC)))
def test_hit_rate_is_a_rate_and_pending_signals_are_never_counted(items, now):
    outcomes = [outcome(point, p0, p1, now) for point, p0, p1 in items]
    result = tally(outcomes)
    assert result.resolved + result.pending + result.unpriced == result.signals == len(items)
    assert result.pending == sum(point.horizon_end > now for point, _, _ in items)
    for item in outcomes:
        if item.point.horizon_end > now:
            assert item.status is OutcomeStatus.PENDING and item.hit is None
    curve = cumulative_pnl(outcomes)
    assert len(curve) == result.resolved
    assert [moment for moment, _ in curve] == sorted(moment for moment, _ in curve)
    assert (curve[-1][1] if curve else 0) == sum(o.hypothetical_pnl for o in outcomes if o.hypothetical_pnl is not None)
    if result.resolved:
        assert 0 <= result.hit_rate <= 1
        assert result.hits == sum(1 for o in outcomes if o.hit)
    else:
        assert result.hit_rate is None and result.average_move_pct is None


@given(points, prices, prices)
def test_a_hit_is_a_move_the_signals_way_and_fees_always_cost(point, p0, p1):
    late = point.horizon_end + timedelta(seconds=1)
    result = outcome(point, p0, p1, late)
    assert result.hit == (result.move_pct > 0)
    assert result.hit == ((p1 > p0) if point.action == "BUY" else (p1 < p0))
    assert result.hypothetical_pnl == result.move_pct - Decimal("0.2")  # stake 100: the move in % minus 2 x 0.1 %
