"""Hand-computed backtest scenarios: next-open fills, fees, slippage, stops vs targets, gaps, end of data."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from ai.actions import Action
from ai.signal import Signal
from backtest.engine import BacktestSettings, run_engine
from backtest.results import AiUsage, report_json
from backtest.runner import buy_and_hold, run_backtest
from backtest.sources import BarView
from exchanges.markets import MarketRules
from risk import RiskConfig

T0 = datetime(2024, 3, 1, tzinfo=UTC)
MARKET = MarketRules(
    symbol="TST/USDT",
    base="TST",
    quote="USDT",
    amount_step=Decimal("0.001"),
    price_step=Decimal("0.01"),
    min_amount=Decimal("0.001"),
    min_notional=Decimal("1"),
    taker_fee=Decimal("0.001"),
    maker_fee=Decimal("0.001"),
)
# Nothing but the signal and the 1% risk rule shapes these trades.
PERMISSIVE = RiskConfig.from_overrides(
    {
        "min_confidence": "0",
        "cooldown_minutes": "0",
        "min_reward_risk": "0",
        "max_position_pct": "100",
        "max_total_exposure_pct": "100",
        "max_stop_pct": "50",
    }
)
SETTINGS = BacktestSettings("TST/USDT", "1h", starting_balance=Decimal(1000), risk=PERMISSIVE)


def candles(rows: list[tuple[float, float, float, float]], skip: tuple[int, ...] = ()) -> pd.DataFrame:
    times = [T0 + timedelta(hours=i) for i in range(len(rows) + len(skip)) if i not in skip]
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=pd.DatetimeIndex(times))
    frame["volume"] = 10.0
    return frame


def buy(stop: float, target: float | None = None, entry: float = 100.0) -> Signal:
    return Signal(
        action=Action.BUY,
        confidence=70,
        entry_price=Decimal(str(entry)),
        stop_loss=Decimal(str(stop)),
        take_profit=Decimal(str(target)) if target else None,
        horizon_bars=5,
        reasoning="scripted",
        key_factors=[],
    )


SELL = Signal(
    action=Action.SELL,
    confidence=70,
    entry_price=None,
    stop_loss=None,
    take_profit=None,
    horizon_bars=1,
    reasoning="scripted",
    key_factors=[],
)


class Scripted:
    """Proposes the given signal at the given bars, when the account allows it."""

    def __init__(self, signals: dict[int, Signal]) -> None:
        self.signals = signals
        self.asked: list[BarView] = []

    def active_bars(self, length: int) -> np.ndarray:
        mask = np.zeros(length, dtype=bool)
        mask[list(self.signals)] = True
        return mask

    def signal_at(self, view: BarView) -> Signal:
        self.asked.append(view)
        signal = self.signals[view.index]
        return signal if signal.action in view.allowed_actions else HOLD


HOLD = Signal(
    action=Action.HOLD,
    confidence=0,
    entry_price=None,
    stop_loss=None,
    take_profit=None,
    horizon_bars=1,
    reasoning="not allowed now",
    key_factors=[],
)
FLAT = (100.0, 100.5, 99.5, 100.0)


def run(rows, signals, settings=SETTINGS, first=0, skip=()):
    return run_engine(candles(rows, skip), MARKET, settings, Scripted(signals), first)


def test_entry_at_the_next_open_exit_on_a_sell_at_the_next_open_with_fees():
    rows = [FLAT, FLAT, FLAT, (101, 102, 100.5, 101.5), FLAT, FLAT, (105, 105.5, 104, 104.5), FLAT]
    result = run(rows, {2: buy(stop=90), 5: SELL})
    [trade] = result.trades
    # Risk 1% of 1,000 = 10 over a 100 - 90 stop distance: 1.000 TST, bought at bar 3's open 101.
    # Fees 0.1%: 0.101 in, 0.105 out. PnL = (105 - 101) x 1 - 0.101 - 0.105 = 3.794
    assert (trade.entry_price, trade.exit_price, trade.quantity) == (Decimal(101), Decimal(105), Decimal("1.000"))
    assert trade.entry_time == T0 + timedelta(hours=3) and trade.exit_time == T0 + timedelta(hours=6)
    assert trade.fees == Decimal("0.206") and trade.pnl == Decimal("3.794")
    assert trade.exit_reason == "signal"
    assert result.curve.equity[-1] == pytest.approx(1003.794)
    # Marked at each close while holding: bar 3 closes at 101.5 -> 1000 - 101.101 + 101.5
    assert result.curve.equity[3] == pytest.approx(1000.399)
    assert list(result.curve.in_position) == [False, False, False, True, True, True, False, False]


def test_stop_first_when_a_bar_touches_both_stop_and_target():
    rows = [FLAT, FLAT, FLAT, (100, 111, 94, 105), FLAT]
    [trade] = run(rows, {1: buy(stop=95, target=110)}).trades
    # Bought at bar 2's open 100: 10 at risk over a 5 stop distance = 2.000 TST. Bar 3 reaches both levels: the
    # stop is assumed first. PnL = 2 x (95 - 100) - 0.200 - 0.190 = -10.39
    assert (trade.exit_reason, trade.exit_price, trade.quantity) == ("stop", Decimal(95), Decimal("2.000"))
    assert trade.pnl == Decimal("-10.39")


def test_a_gap_down_through_the_stop_fills_at_the_open():
    rows = [FLAT, FLAT, FLAT, (90, 92, 88, 91), FLAT]
    [trade] = run(rows, {1: buy(stop=95)}).trades
    assert (trade.exit_reason, trade.exit_price) == ("stop", Decimal(90))


def test_take_profit_fills_at_the_target():
    rows = [FLAT, FLAT, (100, 103, 99.8, 102), (102, 111, 101, 108), FLAT]
    [trade] = run(rows, {1: buy(stop=95, target=110)}).trades
    assert (trade.exit_reason, trade.exit_price) == ("take_profit", Decimal(110))


def test_a_position_open_at_the_end_is_closed_at_the_last_close():
    rows = [FLAT, FLAT, FLAT, (100, 104, 99, 103.27)]
    result = run(rows, {1: buy(stop=95)})
    [trade] = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.exit_time) == (
        "end_of_data",
        Decimal("103.27"),
        T0 + timedelta(hours=3),
    )
    assert result.curve.equity[-1] == pytest.approx(1000 + float(trade.pnl))
    assert not result.curve.in_position[-1]


def test_slippage_worsens_both_fills_on_the_price_grid():
    rows = [FLAT, FLAT, (100.03, 101, 99, 100), FLAT, (104.97, 105, 104, 104.5), FLAT]
    settings = BacktestSettings(
        "TST/USDT", "1h", starting_balance=Decimal(1000), slippage_bps=Decimal(10), risk=PERMISSIVE
    )
    [trade] = run(rows, {1: buy(stop=90), 3: SELL}, settings).trades
    assert trade.entry_price == Decimal("100.14")  # 100.03 x 1.001 = 100.13003, up to the 0.01 grid
    assert trade.exit_price == Decimal("104.86")  # 104.97 x 0.999 = 104.86503, down to the grid


def test_zero_volume_flat_bars_and_missing_bars_change_nothing_but_are_reported():
    flat = (100.0, 100.0, 100.0, 100.0)
    rows = [FLAT] * 3 + [flat, flat] + [(101, 102, 100, 101)] * 2
    frame = candles(rows, skip=(5,))
    frame.loc[frame.index[3:5], "volume"] = 0.0
    report = run_backtest(
        frame,
        MARKET,
        SETTINGS,
        Scripted({4: buy(stop=95)}),
        1,
        described={"symbol": "TST/USDT"},
        ai_usage=lambda: AiUsage(0, 0, 0, Decimal(0), None),
        warnings=[],
    )
    assert [trade.entry_price for trade in report.trades] == [Decimal(101)]  # filled at the bar after the gap
    assert report.gaps == [
        {"first_missing": "2024-03-01T05:00:00+00:00", "last_missing": "2024-03-01T05:00:00+00:00", "missing_bars": 1}
    ]
    assert set(report.baselines) == {"buy_and_hold", "rules:sma_cross"}


def test_buy_and_hold_is_all_in_net_of_both_fees():
    rows = [FLAT, (100, 101, 99, 100), (100, 121, 99, 120)]
    curve, [trade], fees = buy_and_hold(candles(rows), MARKET, SETTINGS, 0)
    # 1000 / 1.001 / 100 = 9.99000... -> 9.990 TST; in 999.00 + 0.999 fee; out 9.99 x 120 = 1198.80 - 1.1988 fee
    assert trade.quantity == Decimal("9.990")
    assert fees == Decimal("0.999") + Decimal("1.19880")
    assert curve.equity[-1] == pytest.approx(1000 - 999.0 - 0.999 + 1198.8 - 1.1988)


def test_same_inputs_give_identical_trades_and_metrics():
    rng = np.random.default_rng(7)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.01, 400))
    rows = [(c * 0.999, c * 1.006, c * 0.994, c) for c in closes]
    signals = {i: buy(stop=round(closes[i] * 0.97, 2), entry=round(closes[i], 2)) for i in range(0, 380, 20)}
    signals.update({i + 10: SELL for i in range(0, 380, 20)})

    def once():
        return report_json(
            run_backtest(
                candles(rows),
                MARKET,
                SETTINGS,
                Scripted(signals),
                0,
                described={},
                ai_usage=lambda: AiUsage(0, 0, 0, Decimal(0), None),
                warnings=[],
            )
        )

    first, second = once(), once()
    assert first == second
    assert len(first["trades"]) > 5
