"""Performance metrics of one equity curve and its trades. Pure functions, no I/O.

Definitions (n = number of bars, E_t = equity at bar t's close, E_-1 = starting_balance, B = bars_per_year):

- per-bar return r_t = E_t / E_(t-1) - 1 for t = 0..n-1; the account holds starting_balance just before the first
  bar, so the n returns compound exactly to the total return and a move during the first bar is not lost.
- total_return_pct = (E_(n-1) / starting_balance - 1) * 100.
- cagr_pct = ((E_(n-1) / starting_balance) ** (1 / years) - 1) * 100 with years the calendar time from the first
  bar's open to the last bar's close, (t_(n-1) - t_0) / 365 days + 1 / B, never less than n / B: a hole in the data
  counts as the time it lasted, not as zero bars. None if it overflows a float (a tiny window extrapolated to a year).
- P = the observed number of returns per calendar year, n / years (years as for CAGR); P = B when the data has no
  hole, and fewer than B when it has one. Volatility, Sharpe and Sortino are annualised by sqrt(P), not sqrt(B): the
  square-root-of-time rule (Lo, "The Statistics of Sharpe Ratios", Financial Analysts Journal 58(4), 2002) scales a
  per-period statistic by the number of periods in a year, and across a hole the bar after it carries the whole move
  as one return, so a year holds only the returns observed in it. Annualising by B instead would count the n returns
  as n / B years while CAGR counts the calendar years, and a curve with a long hole would show a small CAGR beside
  a large Sharpe (issue: "annualised metrics use calendar time").
- annual_volatility_pct = sample standard deviation (ddof=1) of r * sqrt(P) * 100; None with fewer than two bars.
- sharpe = mean(r) / std(r, ddof=1) * sqrt(P), risk-free rate 0; None with fewer than two bars or flat equity.
- sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(P), the downside deviation taken over all bars (not only the
  losing ones); None with fewer than two bars or no losing bar.
- max_drawdown_pct = max over t of (1 - E_t / max(E_-1..E_t)) * 100, so 0 <= it <= 100.
- max_drawdown_duration_bars = the longest run of consecutive bars whose equity is below the running peak (a drawdown
  not recovered by the last bar counts up to it).
- max_drawdown_duration_days = the longest such run in calendar time, from the open of its first bar to the close of
  its last, (t_last - t_first) in days + 365 / B, never less than its bars * 365 / B: a hole in the data inside a
  drawdown counts as the time it lasted. It may be a different run from the longest in bars.
- calmar = cagr_pct / max_drawdown_pct; None without a drawdown or a CAGR.
- trades = number of closed trades; win_rate_pct = share of trades with pnl > 0 * 100 (break-even is not a win).
- profit_factor = sum of winning pnl / |sum of losing pnl|; None when no trade lost.
- expectancy = mean trade pnl (quote currency, net of fees).
- average_trade_pct = mean of pnl / (entry_price * quantity) * 100, the net return on the notional each trade risked.
- exposure_pct = share of bars holding a position at the close * 100.
- fees_paid, ai_cost_usd: passed through; final_equity = E_(n-1).
- net_return_after_ai_pct = ((E_(n-1) - ai_cost_usd) / starting_balance - 1) * 100, counting one USD of AI cost as
  one unit of quote currency (USDT-quoted markets), because a strategy that only wins before its API bill does not win.

Trade metrics are None without trades. Every float returned is finite or None, so the dict is JSON-safe as is.
"""

import math

import numpy as np
from numpy.typing import NDArray

from backtest.results import EquityCurve, TradeRecord

DAYS_PER_YEAR = 365
SECONDS_PER_DAY = 86_400


def bars_per_year(timeframe_seconds: int) -> float:
    """Bars in a year of a market that trades around the clock every day, as crypto does."""
    if timeframe_seconds <= 0:
        raise ValueError(f"timeframe_seconds must be positive, got {timeframe_seconds}")
    return DAYS_PER_YEAR * SECONDS_PER_DAY / timeframe_seconds


def compute_metrics(
    curve: EquityCurve,
    trades: list[TradeRecord],
    starting_balance: float,
    bars_per_year: float,
    fees_paid: float,
    ai_cost_usd: float,
) -> dict[str, float | int | None]:
    """The metrics of the module docstring; raises ValueError on an empty curve or non-positive equity."""
    if len(curve) == 0:
        raise ValueError("the equity curve has no bars")
    if not (starting_balance > 0 and bars_per_year > 0):
        raise ValueError("starting_balance and bars_per_year must be positive")
    path = np.concatenate(([float(starting_balance)], curve.equity))
    # Long-only spot equity cannot reach zero; if it does, per-bar returns are undefined and the engine is wrong.
    if (path <= 0).any():
        raise ValueError("equity must stay positive")

    bars = len(curve)
    final_equity = float(path[-1])
    growth = final_equity / starting_balance
    returns = path[1:] / path[:-1] - 1.0
    volatility = float(np.std(returns, ddof=1)) if bars > 1 else None
    mean_return = float(np.mean(returns))
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    years = _calendar_years(curve, bars_per_year)
    annualizer = math.sqrt(_returns_per_year(bars, years, bars_per_year))

    drawdowns = 1.0 - path / np.maximum.accumulate(path)
    max_drawdown_pct = float(drawdowns.max()) * 100
    underwater = drawdowns[1:] > 0
    duration_bars = _longest_run(underwater)
    cagr_pct = _cagr_pct(growth, years)

    metrics: dict[str, float | int | None] = {
        "total_return_pct": (growth - 1.0) * 100,
        "cagr_pct": cagr_pct,
        "annual_volatility_pct": None if volatility is None else volatility * annualizer * 100,
        "sharpe": mean_return / volatility * annualizer if volatility else None,
        "sortino": mean_return / downside * annualizer if bars > 1 and downside > 0 else None,
        "max_drawdown_pct": max_drawdown_pct,
        "max_drawdown_duration_bars": duration_bars,
        "max_drawdown_duration_days": _longest_run_days(curve.times, underwater, bars_per_year),
        "calmar": cagr_pct / max_drawdown_pct if cagr_pct is not None and max_drawdown_pct > 0 else None,
        **_trade_metrics(trades),
        "exposure_pct": float(np.mean(curve.in_position)) * 100,
        "fees_paid": float(fees_paid),
        "ai_cost_usd": float(ai_cost_usd),
        "final_equity": final_equity,
        "net_return_after_ai_pct": ((final_equity - ai_cost_usd) / starting_balance - 1.0) * 100,
    }
    return {key: _finite_or_none(value) for key, value in metrics.items()}


def _trade_metrics(trades: list[TradeRecord]) -> dict[str, float | int | None]:
    if not trades:
        return {
            "trades": 0,
            "win_rate_pct": None,
            "profit_factor": None,
            "expectancy": None,
            "average_trade_pct": None,
        }
    pnls = np.array([float(trade.pnl) for trade in trades])
    notionals = np.array([float(trade.entry_price * trade.quantity) for trade in trades])
    gross_loss = -float(pnls[pnls < 0].sum())
    return {
        "trades": len(trades),
        "win_rate_pct": float(np.mean(pnls > 0)) * 100,
        "profit_factor": float(pnls[pnls > 0].sum()) / gross_loss if gross_loss > 0 else None,
        "expectancy": float(np.mean(pnls)),
        "average_trade_pct": float(np.mean(pnls / notionals)) * 100,
    }


def _calendar_years(curve: EquityCurve, bars_per_year: float) -> float:
    """Years from the first bar's open to the last bar's close; never fewer than the bars count for."""
    span_seconds = float((curve.times[-1] - curve.times[0]) / np.timedelta64(1, "s"))
    calendar = span_seconds / (DAYS_PER_YEAR * SECONDS_PER_DAY) + 1 / bars_per_year
    return max(calendar, len(curve) / bars_per_year)


def _returns_per_year(returns: int, years: float, bars_per_year: float) -> float:
    """The returns observed per calendar year; exactly bars_per_year when the curve has no hole (the two only differ
    there by float rounding, which must not move a gap-free result)."""
    observed = returns / years
    return bars_per_year if observed >= bars_per_year * (1 - 1e-9) else observed


def _cagr_pct(growth: float, years: float) -> float | None:
    exponent = math.log(growth) / years
    # exp() overflows just above 709; a window that short says nothing about a year anyway.
    if exponent > 700:
        return None
    return math.expm1(exponent) * 100


def _runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The first index and the index one past the last of each run of True in `mask`, in order."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _longest_run(mask: NDArray[np.bool_]) -> int:
    starts, stops = _runs(mask)
    return int((stops - starts).max()) if len(starts) else 0


def _longest_run_days(times: NDArray[np.datetime64], mask: NDArray[np.bool_], bars_per_year: float) -> float:
    """Days from the open of a run's first bar to the close of its last (`times` are bar open times), longest run."""
    starts, stops = _runs(mask)
    if not len(starts):
        return 0.0
    bar_days = DAYS_PER_YEAR / bars_per_year
    spans = (times[stops - 1] - times[starts]) / np.timedelta64(1, "D") + bar_days
    # As for CAGR: bars spaced closer than the timeframe (a curve built by hand) still count for their length.
    return float(np.maximum(spans, (stops - starts) * bar_days).max())


def _finite_or_none(value: float | int | None) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
