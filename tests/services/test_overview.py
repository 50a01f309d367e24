"""The landing page's read side on SQLite and PostgreSQL: a paper account after a filled BUY is worth its cash plus
the BTC held at the market's latest price (replay or store), PnL adds up to the change since the start, a position
without a price is shown as such, and the latest watch runs read in words."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import Order, Position, RunStatus, Trade, WatchRun
from app.services import overview, watch_runs
from app.services.credentials import signal_services
from app.services.watch_runs import DueRun
from exchanges.orders import OrderSide
from tests import factories

BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)  # rules:rsi_reversion BUYs 0.00084 BTC at 43,624.00 here
STOP_BAR = datetime(2024, 1, 12, 22, tzinfo=UTC)  # and its stop (42,434.55) is hit here
ENTRY, QUANTITY = Decimal("43624"), Decimal("0.00084")
FEE = QUANTITY * ENTRY * Decimal("0.001")
WALL = datetime(2030, 5, 1, 12, tzinfo=UTC)


def wall() -> datetime:
    return WALL  # the replay starts now: its time reads 2024-01-16 05:00 (see app.services.replay.START_BARS)


def services_for(session, user_id):
    return signal_services(session, current_settings(), user_id)


@pytest.fixture
def trader(app):
    user = factories.user(db.session, password=None)
    account = factories.paper_account(db.session, user)
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion", auto_execute=True)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, account, watch


def run(watch, bar):
    claimed = watch_runs.claim(db.session, DueRun(watch.id, bar, "schedule"), bar + timedelta(hours=1))
    return watch_runs.execute_run(db.session, current_settings(), claimed.id, services_for, "store")


def store_market():
    settings = current_settings()
    return replace(settings, scheduler=replace(settings.scheduler, market="store"))


def replay_close(at_open: datetime) -> Decimal:
    [candle] = [c for c in factories._read("binance_BTCUSDT_1h_2024-01_2024-09.csv", "1h") if c.open_time == at_open]
    return candle.close


def test_after_a_buy_equity_is_cash_plus_the_btc_held_at_the_replays_latest_close(trader):
    user, account, watch = trader
    run(watch, BUY_BAR)
    settings = current_settings()
    assert settings.scheduler.market == "replay"

    [view] = overview.account_overviews(
        db.session, settings, user.id, overview.latest_prices(db.session, settings, wall)
    )

    [held] = view.positions
    price = replay_close(datetime(2024, 1, 16, 4, tzinfo=UTC))
    assert held.quote == overview.Quote(price, datetime(2024, 1, 16, 5, tzinfo=UTC), "replay", "1h")
    assert held.quote.label == "replay 1h close, 2024-01-16 05:00 UTC replay time"
    cash = Decimal(100) - QUANTITY * ENTRY - FEE
    assert (view.account.id, view.market, view.cash) == (account.id, "replay", cash)
    assert view.equity == cash + QUANTITY * price
    assert view.positions_value == QUANTITY * price
    assert Decimal(99) < view.equity < Decimal(101)  # not the 63 USDT of cash alone
    assert view.unrealized_pnl == held.unrealized_pnl == QUANTITY * price - (QUANTITY * ENTRY + FEE)
    assert view.realized_pnl == 0
    assert view.change == view.equity - 100 == view.realized_pnl + view.unrealized_pnl
    assert view.change_pct == view.change  # of 100 USDT
    assert (held.position.quantity, held.position.entry_price, held.base) == (QUANTITY, ENTRY, "BTC")
    assert held.position.stop_loss == Decimal("42434.55") and held.position.take_profit is not None
    assert (held.quantity_decimals, held.price_decimals) == (5, 2)  # binance BTC/USDT: 0.00001 BTC, 0.01 USDT
    assert view.unpriced == [] and view.price_sources == ["replay"] and held.notes == []


def test_on_the_store_market_the_newest_stored_candle_prices_the_position(trader):
    user, _, watch = trader
    run(watch, BUY_BAR)
    [view] = overview.account_overviews(db.session, store_market(), user.id)
    [held] = view.positions
    price = replay_close(datetime(2024, 9, 6, 3, tzinfo=UTC))
    assert held.quote == overview.Quote(price, datetime(2024, 9, 6, 4, tzinfo=UTC), "stored candles", "1h")
    assert held.quote.label == "last stored 1h close, 2024-09-06 04:00 UTC"
    assert view.equity == view.cash + QUANTITY * price


def test_a_position_without_a_price_is_shown_as_such_and_counts_at_its_entry(trader):
    user, _, watch = trader
    run(watch, BUY_BAR)
    [view] = overview.account_overviews(db.session, current_settings(), user.id, lambda account, symbol: None)
    [held] = view.positions
    assert (held.quote, held.market_value, held.unrealized_pnl) == (None, None, None)
    assert view.unpriced == ["BTC/USDT"] and view.price_sources == []
    assert view.equity == view.cash + QUANTITY * ENTRY  # AccountBook.equity: a position without a price at entry
    assert view.unrealized_pnl == 0


def test_a_symbol_without_stored_candles_has_no_price_on_the_store_market(trader):
    user, account, _ = trader
    db.session.add(
        Position(
            account_id=account.id,
            symbol="ETH/USDT",
            quantity=Decimal("0.0099"),
            entry_price=Decimal("2500"),
            cost_basis=Decimal("24.75"),
            fees_unvalued=True,
        )
    )
    account.current_balance -= Decimal("24.75")
    db.session.commit()
    [view] = overview.account_overviews(db.session, store_market(), user.id)
    [held] = view.positions
    assert held.quote is None and view.unpriced == ["ETH/USDT"]
    assert view.equity == Decimal(100)
    assert held.notes and held.notes[0].startswith("fees incomplete")


def test_a_closed_trade_is_realized_pnl_and_equity_is_cash(trader):
    user, _, watch = trader
    run(watch, BUY_BAR)
    run(watch, STOP_BAR)
    sell = db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).one()
    [view] = overview.account_overviews(db.session, current_settings(), user.id, lambda account, symbol: None)
    assert view.positions == []
    assert view.equity == view.cash == Decimal(100) + sell.realized_pnl
    assert view.realized_pnl == sell.realized_pnl < 0
    assert view.change == view.realized_pnl and view.unrealized_pnl == 0


def test_a_fee_taken_in_btc_shows_the_quantity_held_to_the_satoshi(trader):
    user, account, _ = trader
    held = Decimal("0.00083916")  # 0.00084 bought, the exchange kept 0.00000084 BTC as its fee
    db.session.add(
        Position(
            account_id=account.id, symbol="BTC/USDT", quantity=held, entry_price=ENTRY, cost_basis=QUANTITY * ENTRY
        )
    )
    db.session.commit()
    [view] = overview.account_overviews(
        db.session, current_settings(), user.id, lambda account, symbol: overview.Quote(ENTRY, BUY_BAR, "replay", "1h")
    )
    assert view.positions[0].quantity_decimals == 8
    assert view.equity == view.cash + held * ENTRY


def test_a_live_account_is_valued_from_stored_candles_without_the_network(app):
    user = factories.user(db.session, password=None)
    account = factories.live_account(db.session, user, balance="50")
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.add(
        Position(account_id=account.id, symbol="BTC/USDT", quantity=QUANTITY, entry_price=ENTRY, cost_basis=Decimal(37))
    )
    db.session.commit()
    [view] = overview.account_overviews(db.session, current_settings(), user.id)
    assert view.market == "ccxt:binance"
    assert view.positions[0].quote.source == "stored candles"


def test_an_account_that_started_with_nothing_has_no_change_percentage(app):
    user = factories.user(db.session, password=None)
    factories.live_account(db.session, user, balance="0")
    db.session.commit()
    [view] = overview.account_overviews(db.session, current_settings(), user.id)
    assert (view.equity, view.change, view.change_pct) == (0, 0, None)


def test_recent_runs_are_the_users_latest_with_their_outcome_in_words(trader):
    user, _, watch = trader
    finished = run(watch, BUY_BAR)
    failed = run(watch, datetime(2024, 10, 1, tzinfo=UTC))
    other = factories.user(db.session, password=None)
    factories.watch(db.session, other)
    db.session.add(
        WatchRun(watch_id=factories.watch(db.session, other, timeframe="4h").id, bar_time=BUY_BAR, trigger="x")
    )
    db.session.commit()

    lines = overview.recent_runs(db.session, user.id)
    assert [line.run_id for line in lines] == [failed.id, finished.id]
    order = db.session.get(Order, finished.order_id)
    newest, buy = lines
    assert (buy.bar_time, buy.symbol, buy.timeframe, buy.status) == (BUY_BAR, "BTC/USDT", "1h", RunStatus.SUCCEEDED)
    assert buy.outcome == (
        f"BUY (confidence 62); approved (APPROVED, SIZED); order {order.client_order_id} buy 0.00084 at 43624 [closed]"
    )
    assert newest.status is RunStatus.FAILED and newest.outcome.startswith("failed at candles: INVALID_INPUT: until")
    assert len(overview.recent_runs(db.session, user.id, limit=1)) == 1
