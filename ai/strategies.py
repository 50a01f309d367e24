"""The classic strategies behind "rules:STRATEGY": each one's parameters, per-bar verdicts and the reasoning it gives.

Strategies (parameters and defaults in STRATEGIES; all take atr_length=14, stop_atr=2, target_atr=4):
- sma_cross: BUY when SMA(fast=10) crosses strictly above SMA(slow=30) (fast < slow on the previous bar, fast > slow
  on this one, as backtesting.py's `crossover`); SELL on the mirror cross down. Confidence 50 + 100 x the change of
  the spread over the crossing bar in ATRs, capped at 90: a decisive cross scores higher than a graze.
- ema_rsi_volume: BUY when close > EMA(ema_fast=50) > EMA(ema_slow=200), rsi_low=40 <= RSI(rsi_length=14) <=
  rsi_high=70 and volume / its mean over volume_length=20 bars >= min_volume_ratio=1.5. SELL when close < EMA(fast)
  (trend broken, confidence 70) or RSI > rsi_exit=75 (overbought, 50 + 40 x how far into the 75-100 zone).
  BUY confidence 50 + up to 20 for the distance above EMA(slow) (full at 5%) + up to 20 for the volume surge (full
  at twice the threshold).
- rsi_reversion: BUY when RSI(length=14) < low=30, SELL when RSI > high=70. Confidence 50 + 45 x how far RSI went
  past the threshold towards 0 or 100.

`ai.rules` turns the verdicts into Signals.
"""

import itertools
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ai.actions import Action
from ai.context_text import price_decimals
from ai.indicators import rsi_with_warmup
from ai.rule_types import BUY, NONE, SELL, Floats, Params, ParamSpec, Prepared, Strategy, Verdicts

# Float SMAs of identical closes can differ by ~1e-12 of the price (pandas-ta's SMA is a convolution); a spread that
# small is a tie, and a tie never crosses. Real crosses are many orders of magnitude wider.
_TIE = 1e-9


def _require_order(params: Params, *names: str) -> None:
    for lower, upper in itertools.pairwise(names):
        if not params[lower] < params[upper]:
            raise ValueError(f"parameter {lower} ({params[lower]:g}) must be less than {upper} ({params[upper]:g})")


def atr_values(frame: pd.DataFrame, length: int) -> Floats:
    import pandas_ta as ta  # pandas-ta (with numba) takes ~1.5 s to import: only computing indicators pays for it

    atr = ta.atr(frame["high"], frame["low"], frame["close"], length=length, talib=False)
    return np.full(len(frame), np.nan) if atr is None else atr.to_numpy(dtype=np.float64)


def _sma(series: "pd.Series[float]", length: int) -> Floats:
    import pandas_ta as ta  # pandas-ta (with numba) takes ~1.5 s to import: only computing indicators pays for it

    sma = ta.sma(series, length=length, talib=False)
    return np.full(len(series), np.nan) if sma is None else sma.to_numpy(dtype=np.float64)


def _ema(series: "pd.Series[float]", length: int) -> Floats:
    import pandas_ta as ta  # pandas-ta (with numba) takes ~1.5 s to import: only computing indicators pays for it

    ema = ta.ema(series, length=length, talib=False)
    return np.full(len(series), np.nan) if ema is None else ema.to_numpy(dtype=np.float64)


def _previous[G: np.generic](values: NDArray[G], fill: object) -> NDArray[G]:
    shifted = np.empty_like(values)
    if len(values):
        shifted[0] = fill
        shifted[1:] = values[:-1]
    return shifted


def _fmt(value: float, close: float) -> str:
    return f"{value:.{price_decimals(close)}f}"


def _atr_factor(prepared: Prepared, index: int) -> str:
    atr, close = float(prepared.features["atr"][index]), float(prepared.close[index])
    return f"ATR{prepared.params['atr_length']} {_fmt(atr, close)}"


def _compute_sma_cross(frame: pd.DataFrame, params: Params, atr: Floats) -> Verdicts:
    close = frame["close"]
    fast, slow = _sma(close, int(params["fast"])), _sma(close, int(params["slow"]))
    spread = fast - slow
    tie = _TIE * np.abs(slow)
    # NaN spreads (warm-up) compare False on both sides, so nothing fires before both averages exist.
    above, below = spread > tie, spread < -tie
    was_above, was_below = _previous(above, False), _previous(below, False)
    action = np.select([was_below & above, was_above & below], [BUY, SELL], NONE)
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = np.abs(spread - _previous(spread, np.nan)) / atr
    confidence = 50 + np.minimum(40, np.round(np.nan_to_num(100 * strength)))
    return action, confidence, {"fast": fast, "slow": slow}


def _explain_sma_cross(prepared: Prepared, index: int, action: Action) -> tuple[str, list[str]]:
    fast_n, slow_n = prepared.params["fast"], prepared.params["slow"]
    close = float(prepared.close[index])
    fast = _fmt(float(prepared.features["fast"][index]), close)
    slow = _fmt(float(prepared.features["slow"][index]), close)
    if action is Action.BUY:
        return f"SMA{fast_n} crossed above SMA{slow_n}: uptrend starting.", [
            f"SMA{fast_n} {fast} > SMA{slow_n} {slow}",
            _atr_factor(prepared, index),
        ]
    return f"SMA{fast_n} crossed below SMA{slow_n}: closing the long.", [f"SMA{fast_n} {fast} < SMA{slow_n} {slow}"]


def _compute_ema_rsi_volume(frame: pd.DataFrame, params: Params, atr: Floats) -> Verdicts:
    close_series, volume_series = frame["close"], frame["volume"]
    close = close_series.to_numpy()
    ema_fast, ema_slow = _ema(close_series, int(params["ema_fast"])), _ema(close_series, int(params["ema_slow"]))
    rsi = rsi_with_warmup(close_series, int(params["rsi_length"])).to_numpy(dtype=np.float64)
    mean = _sma(volume_series, int(params["volume_length"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(mean > 0, volume_series.to_numpy() / mean, np.nan)
    trend = (close > ema_fast) & (ema_fast > ema_slow)
    buy = trend & (rsi >= params["rsi_low"]) & (rsi <= params["rsi_high"]) & (ratio >= params["min_volume_ratio"])
    broken = close < ema_fast
    overbought = rsi > params["rsi_exit"]
    action = np.select([buy, broken | overbought], [BUY, SELL], NONE)
    with np.errstate(invalid="ignore", divide="ignore"):
        trend_score = np.round(20 * np.clip((close / ema_slow - 1) / 0.05, 0, 1))
        volume_score = np.round(20 * np.clip(ratio / params["min_volume_ratio"] - 1, 0, 1))
        overbought_score = 50 + np.round(40 * np.clip((rsi - params["rsi_exit"]) / (100 - params["rsi_exit"]), 0, 1))
    sell_confidence = np.maximum(np.where(broken, 70, 0), np.where(overbought, overbought_score, 0))
    confidence = np.where(buy, 50 + trend_score + volume_score, sell_confidence)
    return action, np.nan_to_num(confidence), {"ema_fast": ema_fast, "ema_slow": ema_slow, "rsi": rsi, "ratio": ratio}


def _explain_ema_rsi_volume(prepared: Prepared, index: int, action: Action) -> tuple[str, list[str]]:
    p, f = prepared.params, prepared.features
    close, rsi, ratio = float(prepared.close[index]), float(f["rsi"][index]), float(f["ratio"][index])
    close_text = _fmt(close, close)
    ema_fast = f"EMA{p['ema_fast']} {_fmt(float(f['ema_fast'][index]), close)}"
    rsi_label = f"RSI{p['rsi_length']} {rsi:.1f}"
    if action is Action.BUY:
        reasoning = (
            f"Uptrend (close > EMA{p['ema_fast']} > EMA{p['ema_slow']}), RSI in {p['rsi_low']:g}-{p['rsi_high']:g} "
            f"and volume {ratio:.2f}x its {p['volume_length']}-bar mean."
        )
        ema_slow = f"EMA{p['ema_slow']} {_fmt(float(f['ema_slow'][index]), close)}"
        return reasoning, [
            f"close {close_text} > {ema_fast} > {ema_slow}",
            rsi_label,
            f"volume {ratio:.2f}x mean{p['volume_length']}",
            _atr_factor(prepared, index),
        ]
    reasons, factors = [], []
    if rsi > p["rsi_exit"]:
        reasons.append(f"RSI overbought (above {p['rsi_exit']:g})")
        factors.append(rsi_label)
    if close < float(f["ema_fast"][index]):
        reasons.append(f"trend broken (close below EMA{p['ema_fast']})")
        factors.append(f"close {close_text} < {ema_fast}")
    return f"Exit: {' and '.join(reasons)}.", factors


def _compute_rsi_reversion(frame: pd.DataFrame, params: Params, atr: Floats) -> Verdicts:
    rsi = rsi_with_warmup(frame["close"], int(params["length"])).to_numpy(dtype=np.float64)
    low, high = params["low"], params["high"]
    buy, sell = rsi < low, rsi > high
    action = np.select([buy, sell], [BUY, SELL], NONE)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(
            buy, 50 + np.round(45 * (low - rsi) / low), 50 + np.round(45 * (rsi - high) / (100 - high))
        )
    return action, np.nan_to_num(confidence), {"rsi": rsi}


def _explain_rsi_reversion(prepared: Prepared, index: int, action: Action) -> tuple[str, list[str]]:
    p = prepared.params
    rsi = float(prepared.features["rsi"][index])
    label = f"RSI{p['length']} {rsi:.1f}"
    if action is Action.BUY:
        return f"RSI{p['length']} {rsi:.1f} below {p['low']:g}: oversold, expecting a rebound.", [
            label,
            _atr_factor(prepared, index),
        ]
    return f"RSI{p['length']} {rsi:.1f} above {p['high']:g}: overbought, taking profit.", [label]


def _check_ema_rsi_volume(params: Params) -> None:
    _require_order(params, "ema_fast", "ema_slow")
    _require_order(params, "rsi_low", "rsi_high", "rsi_exit")


_RISK_PARAMS = (
    ParamSpec("atr_length", int, 14, 1, 200),
    ParamSpec("stop_atr", float, 2.0, 0, 20, above_minimum=True),
    # 2:1 reward to risk by default: comfortably above the risk manager's 1.5 minimum after price rounding.
    ParamSpec("target_atr", float, 4.0, 0, 50),
)
STRATEGIES: Mapping[str, Strategy] = MappingProxyType(
    {
        "sma_cross": Strategy(
            params=(ParamSpec("fast", int, 10, 1, 499), ParamSpec("slow", int, 30, 2, 500), *_RISK_PARAMS),
            check=lambda params: _require_order(params, "fast", "slow"),
            compute=_compute_sma_cross,
            explain=_explain_sma_cross,
            horizon=lambda params: int(params["slow"]),
        ),
        "ema_rsi_volume": Strategy(
            params=(
                ParamSpec("ema_fast", int, 50, 2, 500),
                ParamSpec("ema_slow", int, 200, 3, 1000),
                ParamSpec("rsi_length", int, 14, 2, 100),
                ParamSpec("rsi_low", float, 40.0, 0, 100),
                ParamSpec("rsi_high", float, 70.0, 0, 100),
                ParamSpec("rsi_exit", float, 75.0, 0, 100),
                ParamSpec("volume_length", int, 20, 2, 500),
                ParamSpec("min_volume_ratio", float, 1.5, 0, 100, above_minimum=True),
                *_RISK_PARAMS,
            ),
            check=_check_ema_rsi_volume,
            compute=_compute_ema_rsi_volume,
            explain=_explain_ema_rsi_volume,
            horizon=lambda params: int(params["ema_fast"]),
        ),
        "rsi_reversion": Strategy(
            params=(
                ParamSpec("length", int, 14, 2, 100),
                ParamSpec("low", float, 30.0, 0, 100, above_minimum=True),
                ParamSpec("high", float, 70.0, 0, 100),
                *_RISK_PARAMS,
            ),
            check=lambda params: _require_order(params, "low", "high"),
            compute=_compute_rsi_reversion,
            explain=_explain_rsi_reversion,
            horizon=lambda params: int(params["length"]),
        ),
    }
)
