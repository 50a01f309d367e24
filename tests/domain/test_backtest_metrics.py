"""Backtest metrics against hand-computed numbers, their edge cases and invariants, and the JSON shape."""

import json
import math
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.metrics import bars_per_year, compute_metrics
from backtest.results import AiUsage, BacktestReport, EquityCurve, TradeRecord, report_json

START = datetime(2024, 1, 1, tzinfo=UTC)


def make_curve(equity, in_position=None):
    count = len(equity)
    times = np.datetime64("2024-01-01T00:00", "ns") + np.arange(count) * np.timedelta64(1, "h")
    held = [False] * count if in_position is None else in_position
    return EquityCurve(times=times, equity=equity, close=np.linspace(100, 110, count), in_position=held)


def make_trade(pnl, entry_price="100", quantity="1", hours=0, reason="signal"):
    return TradeRecord(
        entry_time=START + timedelta(hours=hours),
        exit_time=START + timedelta(hours=hours + 2),
        entry_price=Decimal(entry_price),
        exit_price=Decimal(entry_price) + Decimal(pnl),
        quantity=Decimal(quantity),
        pnl=Decimal(pnl),
        fees=Decimal("0.2"),
        exit_reason=reason,
    )


def metrics_of(equity, trades=(), starting_balance=100.0, per_year=4.0, in_position=None, ai_cost=0.0):
    return compute_metrics(make_curve(equity, in_position), list(trades), starting_balance, per_year, 1.5, ai_cost)


def test_bars_per_year_counts_every_day_of_the_year():
    assert bars_per_year(3600) == 8760
    assert bars_per_year(86400) == 365
    assert bars_per_year(7 * 86400) == pytest.approx(365 / 7)
    with pytest.raises(ValueError):
        bars_per_year(0)


def test_five_bar_curve_matches_hand_computation():
    # Returns from the starting balance: 0, +10%, -10%, 0, +2/9 (99 -> 121).
    returns = [0.0, 0.1, -0.1, 0.0, 2 / 9]
    m = metrics_of([100, 110, 99, 99, 121], per_year=4.0)
    mean = 2 / 45
    stdev = statistics.stdev(returns)
    downside = math.sqrt(0.01 / 5)
    assert m["total_return_pct"] == pytest.approx(21.0)
    assert m["final_equity"] == 121.0
    assert m["cagr_pct"] == pytest.approx((1.21 ** (4 / 5) - 1) * 100)
    assert m["annual_volatility_pct"] == pytest.approx(stdev * 2 * 100)
    assert m["sharpe"] == pytest.approx(mean / stdev * 2)
    assert m["sortino"] == pytest.approx(mean / downside * 2)
    assert m["max_drawdown_pct"] == pytest.approx(10.0)
    assert m["max_drawdown_duration_bars"] == 2
    assert m["max_drawdown_duration_days"] == pytest.approx(2 * 365 / 4)
    assert m["calmar"] == pytest.approx(m["cagr_pct"] / 10.0)


def test_drawdown_still_open_at_the_end_counts_up_to_the_last_bar():
    m = metrics_of([100, 120, 90, 100, 110, 119])
    assert m["max_drawdown_pct"] == pytest.approx(25.0)
    assert m["max_drawdown_duration_bars"] == 4


def test_drawdown_measured_from_the_starting_balance():
    m = metrics_of([90, 95, 99], starting_balance=100.0)
    assert m["max_drawdown_pct"] == pytest.approx(10.0)
    assert m["max_drawdown_duration_bars"] == 3


def test_three_trades_win_rate_profit_factor_expectancy():
    trades = [make_trade("10"), make_trade("-5", hours=3), make_trade("3", entry_price="50", quantity="2", hours=6)]
    m = metrics_of([100, 101, 102], trades=trades)
    assert m["trades"] == 3
    assert m["win_rate_pct"] == pytest.approx(200 / 3)
    assert m["profit_factor"] == pytest.approx(13 / 5)
    assert m["expectancy"] == pytest.approx(8 / 3)
    assert m["average_trade_pct"] == pytest.approx((10 - 5 + 3) / 3)


def test_break_even_trade_is_not_a_win_and_no_loss_means_no_profit_factor():
    m = metrics_of([100, 101], trades=[make_trade("4"), make_trade("0", hours=3)])
    assert m["win_rate_pct"] == pytest.approx(50.0)
    assert m["profit_factor"] is None


def test_exposure_is_the_share_of_bars_in_position():
    m = metrics_of([100, 101, 102, 101, 103], in_position=[False, True, True, False, True])
    assert m["exposure_pct"] == pytest.approx(60.0)


def test_no_trades_gives_none_for_trade_metrics():
    m = metrics_of([100, 100, 100])
    assert m["trades"] == 0
    assert m["win_rate_pct"] is None
    assert m["profit_factor"] is None
    assert m["expectancy"] is None
    assert m["average_trade_pct"] is None
    assert m["exposure_pct"] == 0.0


def test_flat_equity_has_zero_volatility_and_no_sharpe():
    m = metrics_of([100.0] * 10)
    assert m["total_return_pct"] == 0.0
    assert m["cagr_pct"] == 0.0
    assert m["annual_volatility_pct"] == 0.0
    assert m["sharpe"] is None
    assert m["sortino"] is None
    assert m["max_drawdown_pct"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0
    assert m["calmar"] is None


def test_single_bar_has_a_return_but_no_dispersion():
    m = metrics_of([105.0])
    assert m["total_return_pct"] == pytest.approx(5.0)
    assert m["annual_volatility_pct"] is None
    assert m["sharpe"] is None
    assert m["sortino"] is None
    assert m["max_drawdown_pct"] == 0.0


def test_rising_curve_without_losing_bar_has_no_sortino():
    m = metrics_of([101, 102, 103])
    assert m["sharpe"] is not None
    assert m["sortino"] is None


def test_ai_cost_comes_off_the_net_return():
    m = metrics_of([100, 110], ai_cost=2.5)
    assert m["ai_cost_usd"] == 2.5
    assert m["fees_paid"] == 1.5
    assert m["net_return_after_ai_pct"] == pytest.approx(7.5)


def test_cagr_of_a_tiny_window_that_overflows_is_none():
    m = metrics_of([100, 200], per_year=365 * 24 * 60)
    assert m["cagr_pct"] is None
    assert m["calmar"] is None


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        metrics_of([])
    with pytest.raises(ValueError):
        metrics_of([100, 0, 100])
    with pytest.raises(ValueError):
        metrics_of([100], starting_balance=0.0)
    with pytest.raises(ValueError):
        make_curve([100, float("nan")])


def test_trade_record_requires_utc_aware_times_and_a_known_exit_reason():
    with pytest.raises(ValueError):
        TradeRecord(
            datetime(2024, 1, 1),  # naive on purpose: that is what gets refused
            datetime(2024, 1, 2, tzinfo=UTC),
            Decimal(1),
            Decimal(1),
            Decimal(1),
            Decimal(0),
            Decimal(0),
            "signal",
        )
    with pytest.raises(ValueError):
        make_trade("1", reason="margin_call")


equity_paths = st.lists(st.floats(min_value=1.0, max_value=1e6, allow_nan=False), min_size=1, max_size=60)


@given(equity_paths, st.floats(min_value=1.0, max_value=1e6))
def test_drawdown_is_a_percentage_and_total_return_matches_the_ends(equity, start):
    m = metrics_of(equity, starting_balance=start, per_year=8760.0)
    assert 0.0 <= m["max_drawdown_pct"] <= 100.0
    assert 0 <= m["max_drawdown_duration_bars"] <= len(equity)
    assert m["total_return_pct"] == pytest.approx((equity[-1] / start - 1) * 100)
    assert m["final_equity"] == equity[-1]


RATIO_METRICS = (
    "total_return_pct",
    "cagr_pct",
    "annual_volatility_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "max_drawdown_duration_bars",
    "calmar",
    "exposure_pct",
)


@given(equity_paths, st.integers(min_value=-12, max_value=12))
def test_scaling_equity_leaves_ratio_metrics_unchanged(equity, power):
    # Powers of two scale floats exactly, so every comparison inside the metrics keeps its outcome.
    factor = 2.0**power
    plain = metrics_of(equity, starting_balance=equity[0])
    scaled = metrics_of([value * factor for value in equity], starting_balance=equity[0] * factor)
    for key in RATIO_METRICS:
        if plain[key] is None:
            assert scaled[key] is None, key
        else:
            assert scaled[key] == pytest.approx(plain[key], rel=1e-9, abs=1e-12), key


def sample_report(equity):
    curve = make_curve(equity, in_position=[index % 2 == 0 for index in range(len(equity))])
    trades = [make_trade("10"), make_trade("-5", hours=3)]
    metrics = compute_metrics(curve, trades, 100.0, 8760.0, 0.4, 0.01)
    flat = make_curve([100.0] * len(equity))
    return BacktestReport(
        settings={"symbol": "BTC/USDT", "timeframe": "1h", "risk": {"max_position_pct": Decimal(50)}, "x": math.nan},
        metrics=metrics,
        baselines={"buy_and_hold": compute_metrics(flat, [], 100.0, 8760.0, 0.0, 0.0)},
        ai=AiUsage(decisions=5, cache_hits=4, cache_misses=1, cost_usd=Decimal("0.0012"), estimated_cost_usd=None),
        trades=trades,
        gaps=[{"first_missing": START, "last_missing": START + timedelta(hours=1), "missing_bars": np.int64(2)}],
        warnings=["window is before the model's knowledge cutoff"],
        curve=curve,
        baseline_curves={"buy_and_hold": flat},
    )


def test_report_json_is_strict_json_with_none_for_undefined_values():
    data = report_json(sample_report([100.0]))
    text = json.dumps(data, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    assert data["metrics"]["sharpe"] is None
    assert data["baselines"]["buy_and_hold"]["sharpe"] is None
    assert data["settings"]["x"] is None
    assert data["settings"]["risk"] == {"max_position_pct": "50"}
    assert data["gaps"] == [
        {"first_missing": "2024-01-01T00:00:00Z", "last_missing": "2024-01-01T01:00:00Z", "missing_bars": 2}
    ]


def test_report_json_shape_of_ai_and_trades():
    data = report_json(sample_report([100.0, 104.0, 101.0]))
    assert set(data) == {"settings", "metrics", "baselines", "ai", "trades", "gaps", "warnings"}
    assert data["ai"] == {
        "decisions": 5,
        "cache_hits": 4,
        "cache_misses": 1,
        "cost_usd": "0.0012",
        "estimated_cost_usd": None,
    }
    assert data["trades"][0] == {
        "entry_time": "2024-01-01T00:00:00Z",
        "exit_time": "2024-01-01T02:00:00Z",
        "entry_price": "100",
        "exit_price": "110",
        "qty": "1",
        "pnl": "10",
        "fees": "0.2",
        "exit_reason": "signal",
    }
    assert data["warnings"] == ["window is before the model's knowledge cutoff"]


@given(equity_paths)
def test_report_json_never_contains_nan_or_infinity(equity):
    json.dumps(report_json(sample_report(equity)), allow_nan=False)


def test_cagr_counts_a_hole_in_the_data_as_calendar_time():
    # 1h bars: one year of bars, then a hole of one year, then the last bar; equity doubles.
    hour = np.timedelta64(1, "h")
    times = np.datetime64("2021-01-01T00:00", "ns") + np.concatenate(
        (np.arange(8759) * hour, [np.timedelta64(2 * 8760 - 1, "h")])
    )
    equity = np.linspace(100.0, 200.0, len(times))
    curve = EquityCurve(times=times, equity=equity, close=equity, in_position=[True] * len(times))
    m = compute_metrics(curve, [], 100.0, 8760.0, 0.0, 0.0)
    assert m["total_return_pct"] == pytest.approx(100.0)
    # Two calendar years (open of the first bar to close of the last), not 8,760 bars = one year (CAGR 100%).
    assert m["cagr_pct"] == pytest.approx((2**0.5 - 1) * 100)


def test_drawdown_duration_in_days_counts_a_hole_in_the_data_as_calendar_time():
    # 1h bars with 48 missing between hour 4 and hour 53. The drawdown from bar 2 to bar 5 has 4 bars but spans the
    # hole: from the open of bar 2 (02:00) to the close of bar 5 (55:00), 52 hours. The later one has 6 bars, 6 hours.
    hours = [0, 1, 2, 3, 4, 53, 54, 55, 56, 57, 58, 59, 60, 61]
    times = np.datetime64("2024-01-01T00:00", "ns") + np.array(hours) * np.timedelta64(1, "h")
    equity = [100, 110, 105, 104, 103, 108, 111, 110, 109, 108, 107, 106, 105, 112]
    curve = EquityCurve(times=times, equity=equity, close=equity, in_position=[True] * len(times))
    m = compute_metrics(curve, [], 100.0, 8760.0, 0.0, 0.0)
    assert m["max_drawdown_duration_bars"] == 6
    assert m["max_drawdown_duration_days"] == pytest.approx(52 / 24)


def test_annualised_metrics_of_a_curve_without_a_hole_use_bars_per_year_exactly():
    # 1h bars, no hole: the returns observed per calendar year are the 8,760 bars of a year.
    equity = [100, 101, 99.5, 102, 101, 103.5, 104, 102.5]
    times = np.datetime64("2024-01-01T00:00", "ns") + np.arange(len(equity)) * np.timedelta64(1, "h")
    curve = EquityCurve(times=times, equity=equity, close=equity, in_position=[True] * len(equity))
    m = compute_metrics(curve, [], 100.0, 8760.0, 0.0, 0.0)
    path = np.concatenate(([100.0], equity))
    returns = path[1:] / path[:-1] - 1.0  # the module's formula, so that exact equality holds
    stdev = float(np.std(returns, ddof=1))
    mean = float(np.mean(returns))
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    assert m["annual_volatility_pct"] == stdev * math.sqrt(8760.0) * 100
    assert m["sharpe"] == mean / stdev * math.sqrt(8760.0)
    assert m["sortino"] == mean / downside * math.sqrt(8760.0)


def test_annualised_metrics_across_a_hole_use_the_returns_observed_per_calendar_year():
    # 1h bars: 10 bars, a hole of 8,750 hours (just under a year), 10 bars: 20 returns over 8,770 hours of calendar
    # time (first open to last close), so 20 / (8,770 / 8,760) returns a year, not 8,760.
    hour = np.timedelta64(1, "h")
    offsets = np.concatenate((np.arange(10), 8760 + np.arange(10)))
    times = np.datetime64("2021-01-01T00:00", "ns") + offsets * hour
    equity = np.array(
        [101, 100, 102, 101, 103, 102, 104, 103, 105, 104, 110, 109, 111, 110, 112, 111, 113, 112, 114, 113.0]
    )
    curve = EquityCurve(times=times, equity=equity, close=equity, in_position=[True] * len(times))
    m = compute_metrics(curve, [], 100.0, 8760.0, 0.0, 0.0)

    returns = equity / np.concatenate(([100.0], equity[:-1])) - 1
    years = 8770 / 8760
    per_year = 20 / years
    stdev = statistics.stdev(returns.tolist())
    mean = statistics.fmean(returns.tolist())
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / 20)
    assert m["cagr_pct"] == pytest.approx((1.13 ** (1 / years) - 1) * 100, rel=1e-12)
    assert m["annual_volatility_pct"] == pytest.approx(stdev * math.sqrt(per_year) * 100, rel=1e-12)
    assert m["sharpe"] == pytest.approx(mean / stdev * math.sqrt(per_year), rel=1e-12)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(per_year), rel=1e-12)
    # Over sqrt(8,760) the same returns read a Sharpe about 21 times larger.
    assert m["sharpe"] == pytest.approx(mean / stdev * math.sqrt(8760) * math.sqrt(per_year / 8760), rel=1e-12)
