"""A whole backtest: the strategy, buy-and-hold and a rules baseline on the same window, metrics and warnings."""

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, cast

import numpy as np
import pandas as pd

from backtest.engine import BacktestSettings, EngineResult, run_engine
from backtest.metrics import bars_per_year, compute_metrics
from backtest.results import AiUsage, BacktestReport, EquityCurve, TradeRecord
from backtest.sources import BarSignalSource, RulesSource
from exchanges.candles import Gap, find_gaps
from exchanges.markets import MarketRules
from exchanges.timeframes import timeframe_duration
from risk import TradingState

BASELINE_RULES = "sma_cross"


def run_backtest(
    candles: pd.DataFrame,
    market: MarketRules,
    settings: BacktestSettings,
    source: BarSignalSource,
    first_decision: int,
    *,
    described: dict[str, Any],
    ai_usage: Callable[[], AiUsage],
    warnings: list[str],
    progress: Callable[[float], None] | None = None,
) -> BacktestReport:
    """Run the strategy and its baselines over `candles`; decisions start at `first_decision`.

    `described`: the run's settings for the report (plain JSON values). `ai_usage` is asked after the run, when
    the source has counted its decisions, cache hits and cost.
    """
    result = run_engine(candles, market, settings, source, first_decision, progress)
    ai = ai_usage()
    per_year = bars_per_year(int(timeframe_duration(settings.timeframe).total_seconds()))
    window = slice(first_decision, len(candles))

    rules_baseline = run_engine(candles, market, settings, RulesSource(BASELINE_RULES, {}, candles), first_decision)
    hold_curve, hold_trades, hold_fees = buy_and_hold(candles, market, settings, first_decision)

    def metrics(
        outcome_curve: EquityCurve, trades: list[TradeRecord], fees: Decimal, ai_cost: Decimal
    ) -> dict[str, float | int | None]:
        return compute_metrics(
            _sliced(outcome_curve, window),
            trades,
            float(settings.starting_balance),
            per_year,
            float(fees),
            float(ai_cost),
        )

    # cast: run_engine's contract (and the stubs cannot know it): candles carry a UTC DatetimeIndex of open times.
    times = cast(pd.DatetimeIndex, candles.index)
    gaps = [
        {
            "first_missing": gap.first_missing.isoformat(),
            "last_missing": gap.last_missing.isoformat(),
            "missing_bars": gap.missing_bars,
        }
        # Over the warm-up too: indicators computed across a gap start the window on stale values.
        for gap in find_gaps(list(times.to_pydatetime()), settings.timeframe)
    ]
    window_gaps = find_gaps(list(times[first_decision:].to_pydatetime()), settings.timeframe)
    warnings = [*warnings, *_state_warnings(result), *gap_warnings(window_gaps, settings.timeframe)]
    return BacktestReport(
        settings={
            **described,
            "window_start": times[first_decision].isoformat(),
            "window_end": times[-1].isoformat(),
            "bars": len(candles) - first_decision,
            "decisions": result.decisions,
            "signals": result.signals,
            "risk_refusals": result.refusals,
            "rejected_orders": result.rejected_orders,
        },
        metrics=metrics(result.curve, result.trades, result.fees_paid, ai.cost_usd),
        baselines={
            "buy_and_hold": metrics(hold_curve, hold_trades, hold_fees, Decimal(0)),
            f"rules:{BASELINE_RULES}": metrics(
                rules_baseline.curve, rules_baseline.trades, rules_baseline.fees_paid, Decimal(0)
            ),
        },
        ai=ai,
        trades=result.trades,
        gaps=gaps,
        warnings=warnings,
        curve=_sliced(result.curve, window),
        baseline_curves={
            "buy_and_hold": _sliced(hold_curve, window),
            f"rules:{BASELINE_RULES}": _sliced(rules_baseline.curve, window),
        },
    )


def buy_and_hold(
    candles: pd.DataFrame, market: MarketRules, settings: BacktestSettings, first_decision: int
) -> tuple[EquityCurve, list[TradeRecord], Decimal]:
    """All-in at the open after the first decision bar, out at the last close, with fees and slippage."""
    opens, closes = candles["open"].to_numpy(np.float64), candles["close"].to_numpy(np.float64)
    entry_index = first_decision + 1
    slip = settings.slippage_bps / Decimal(10_000)
    entry = Decimal(str(float(opens[entry_index]))) * (1 + slip)
    exit_ = Decimal(str(float(closes[-1]))) * (1 - slip)
    fee = settings.fee_rate
    budget = settings.starting_balance / (1 + fee)
    quantity = (budget / entry / market.amount_step).to_integral_value(ROUND_DOWN) * market.amount_step
    entry_fee = quantity * entry * fee
    cash = settings.starting_balance - quantity * entry - entry_fee
    exit_fee = quantity * exit_ * fee
    final = cash + quantity * exit_ - exit_fee
    equity = np.full(len(closes), float(settings.starting_balance))
    equity[entry_index:] = float(cash) + float(quantity) * closes[entry_index:]
    equity[-1] = float(final)
    holding = np.zeros(len(closes), dtype=bool)
    holding[entry_index:-1] = True
    times = pd.DatetimeIndex(candles.index).as_unit("ns").tz_convert("UTC").tz_localize(None).to_numpy()
    curve = EquityCurve(times=times, equity=equity, close=closes, in_position=holding)
    trade = TradeRecord(
        entry_time=candles.index[entry_index].to_pydatetime(),
        exit_time=candles.index[-1].to_pydatetime(),
        entry_price=entry,
        exit_price=exit_,
        quantity=quantity,
        pnl=final - settings.starting_balance,
        fees=entry_fee + exit_fee,
        exit_reason="end_of_data",
    )
    return curve, [trade] if quantity > 0 else [], entry_fee + exit_fee


def contamination_warning(model: str, knowledge_cutoff: date | None, window_end: date) -> str | None:
    """LLMs have seen historical prices: results on a window they may remember are not evidence."""
    if knowledge_cutoff is None:
        return (
            f"{model} publishes no knowledge cutoff: this window may be in its training data, so its results may "
            "reflect memory rather than skill. Compare with buy-and-hold and the rules baseline."
        )
    if window_end <= knowledge_cutoff:
        return (
            f"the window ends {window_end.isoformat()}, before {model}'s knowledge cutoff "
            f"{knowledge_cutoff.isoformat()}: the model may remember these prices; treat the results as contaminated."
        )
    return None


def settings_dict(settings: BacktestSettings) -> dict[str, Any]:
    return {
        "symbol": settings.symbol,
        "timeframe": settings.timeframe,
        "starting_balance": str(settings.starting_balance),
        "fee_rate": str(settings.fee_rate),
        "slippage_bps": str(settings.slippage_bps),
        "every": settings.every,
        "risk": {key: _plain(value) for key, value in asdict(settings.risk).items()},
    }


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _sliced(curve: EquityCurve, window: slice) -> EquityCurve:
    return EquityCurve(
        times=curve.times[window],
        equity=curve.equity[window],
        close=curve.close[window],
        in_position=curve.in_position[window],
    )


def gap_warnings(gaps: Sequence[Gap], timeframe: str) -> list[str]:
    """A window that spans gaps in the data says so, naming the longest, and how the metrics treat them."""
    if not gaps:
        return []
    longest = max(gaps, key=lambda gap: gap.missing_bars)
    days = longest.missing_bars * timeframe_duration(timeframe) / timedelta(days=1)
    missing = sum(gap.missing_bars for gap in gaps)
    return [
        f"the window spans {len(gaps):,} gap(s) in the data, {missing:,} missing bar(s) in all; the longest: "
        f"{longest.first_missing:%Y-%m-%d %H:%M} -> {longest.last_missing:%Y-%m-%d %H:%M} UTC, "
        f"{longest.missing_bars:,} bar(s) ({days:,.1f} days). Nothing is traded or filled inside a gap, and the "
        "metrics count it as calendar time: CAGR, volatility, Sharpe and Sortino are annualised over the calendar, "
        "and the bar after a gap carries the whole move across it as one return."
    ]


def _state_warnings(result: EngineResult) -> list[str]:
    """A strategy the kill switch or the daily loss limit stopped must say so: its metrics end there."""
    notes = []
    for at, state, reason in result.state_changes:
        if state is TradingState.HALTED:
            refused = result.refusals.get("TRADING_HALTED", 0)
            notes.append(
                f"trading halted at {at:%Y-%m-%d %H:%M} UTC ({reason}): no position was opened after that; "
                f"{refused:,} later signal(s) refused"
            )
    reducing = sum(1 for _, state, _ in result.state_changes if state is TradingState.REDUCING)
    if reducing:
        notes.append(f"the daily loss limit switched to REDUCING (closes only) {reducing:,} time(s)")
    return notes
