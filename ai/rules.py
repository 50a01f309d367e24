"""Deterministic classic strategies behind the "rules:STRATEGY" signal source: the same Signal, at zero cost.

`prepare` computes every array once over a whole history, after which `signal_at` is a few lookups, so a backtest
over 33k bars costs milliseconds. As with the context, the answer at bar t depends on rows <= t only.

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

A BUY carries entry = close, stop = close - stop_atr x ATR, take profit = close + target_atr x ATR (none when
target_atr is 0). A proposal the caller does not allow (no BUY without free balance, no SELL without a position)
becomes a HOLD that says so. HOLD confidence is 0: a rule has no opinion when it does not fire.
"""

import itertools
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ai.actions import Action
from ai.context import price_decimals, rsi_with_warmup
from ai.outcome import hold
from ai.signal import Signal

Params = Mapping[str, int | float]
Floats = NDArray[np.float64]
# What a strategy's compute returns: per-bar action codes (_NONE, _BUY, _SELL), confidences, and quoted features.
Verdicts = tuple[NDArray[np.integer[Any]], Floats, dict[str, Floats]]

_OHLCV = ("open", "high", "low", "close", "volume")
_NONE, _BUY, _SELL = 0, 1, 2
# Float SMAs of identical closes can differ by ~1e-12 of the price (pandas-ta's SMA is a convolution); a spread that
# small is a tie, and a tie never crosses. Real crosses are many orders of magnitude wider.
_TIE = 1e-9
# An ATR this small comes from flat, zero-volume bars; a stop that close to the entry would be noise.
_MIN_ATR_FRACTION = 1e-4


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: type[int] | type[float]
    default: int | float
    minimum: float
    maximum: float
    above_minimum: bool = False  # the minimum itself is excluded

    def describe_range(self) -> str:
        low = f"greater than {self.minimum:g}" if self.above_minimum else f"at least {self.minimum:g}"
        return f"{low} and at most {self.maximum:g}"


@dataclass(frozen=True, eq=False)
class Prepared:
    """One strategy's verdicts for every bar of a history; `signal_at` reads them."""

    strategy: str
    params: Params
    action: NDArray[np.integer[Any]]  # per bar: 0 nothing, 1 BUY, 2 SELL (int8 once prepared)
    confidence: NDArray[np.int64]
    close: Floats
    stop: Floats
    target: Floats  # NaN when there is no take profit
    features: Mapping[str, Floats]  # the values the reasoning quotes
    horizon_bars: int

    def __len__(self) -> int:
        return len(self.action)


@dataclass(frozen=True)
class _Strategy:
    params: tuple[ParamSpec, ...]
    check: Callable[[Params], None]
    compute: Callable[[pd.DataFrame, Params, Floats], Verdicts]
    explain: Callable[[Prepared, int, Action], tuple[str, list[str]]]
    horizon: Callable[[Params], int]


_HOLD = hold("No rule fired on this bar.")
_HOLD_INSTEAD = {
    Action.BUY: hold("The BUY rule fired but BUY is not allowed now."),
    Action.SELL: hold("The SELL rule fired but SELL is not allowed now (no sellable position)."),
}


def parse_params(strategy_name: str, raw: Mapping[str, str]) -> dict[str, int | float]:
    """Validate `--param key=value` strings; the answer holds every parameter, defaults filled in."""
    return _resolve(strategy_name, raw)


def prepare(strategy_name: str, candles: pd.DataFrame, params: Mapping[str, object] | None = None) -> Prepared:
    """Compute one strategy over a whole history (float columns open, high, low, close, volume; ascending)."""
    resolved = _resolve(strategy_name, params or {})
    missing = [name for name in _OHLCV if name not in candles.columns]
    if missing:
        raise ValueError(f"candles lack column(s) {', '.join(missing)}")
    strategy = STRATEGIES[strategy_name]
    frame = candles[list(_OHLCV)].astype(np.float64)
    atr = _atr(frame, int(resolved["atr_length"]))
    action, confidence, features = strategy.compute(frame, resolved, atr)
    close = frame["close"].to_numpy()
    target = close + resolved["target_atr"] * atr if resolved["target_atr"] > 0 else np.full_like(close, np.nan)
    buy = action == _BUY
    # A BUY needs a usable stop: a real ATR and a stop above zero.
    usable = (atr >= _MIN_ATR_FRACTION * close) & (close - resolved["stop_atr"] * atr > 0)
    action = np.where(buy & ~usable, _NONE, action).astype(np.int8)
    return Prepared(
        strategy=strategy_name,
        params=MappingProxyType(resolved),
        action=action,
        confidence=np.clip(confidence, 0, 100).astype(np.int64),
        close=close,
        stop=close - resolved["stop_atr"] * atr,
        target=target,
        features=MappingProxyType({**features, "atr": atr}),
        horizon_bars=strategy.horizon(resolved),
    )


def signal_at(prepared: Prepared, index: int, allowed_actions: Collection[Action]) -> Signal:
    """The signal at bar `index`; a BUY or SELL the caller does not allow becomes a HOLD."""
    if not 0 <= index < len(prepared):
        raise IndexError(f"bar index {index} is outside the prepared history (0..{len(prepared) - 1})")
    code = prepared.action[index]
    if code == _NONE:
        return _HOLD
    action = Action.BUY if code == _BUY else Action.SELL
    if action not in allowed_actions:
        return _HOLD_INSTEAD[action]
    reasoning, key_factors = STRATEGIES[prepared.strategy].explain(prepared, index, action)
    close = float(prepared.close[index])
    buy = action is Action.BUY
    target = float(prepared.target[index])
    return Signal(
        action=action,
        confidence=int(prepared.confidence[index]),
        entry_price=Decimal(repr(close)),
        stop_loss=_price(float(prepared.stop[index]), close) if buy else None,
        take_profit=_price(target, close) if buy and math.isfinite(target) else None,
        horizon_bars=prepared.horizon_bars,
        reasoning=reasoning,
        key_factors=key_factors,
    )


def rules_signal(
    strategy_name: str, params: Mapping[str, object], candles: pd.DataFrame, allowed_actions: Collection[Action]
) -> Signal:
    """The live path: the signal at the last candle. `params` may be raw `--param` strings or typed values."""
    prepared = prepare(strategy_name, candles, params)
    if not len(prepared):
        raise ValueError("no candles to decide on")
    return signal_at(prepared, len(prepared) - 1, allowed_actions)


def _resolve(strategy_name: str, given: Mapping[str, object]) -> dict[str, int | float]:
    strategy = STRATEGIES.get(strategy_name)
    if strategy is None:
        raise ValueError(f"unknown rules strategy {strategy_name!r} (known: {', '.join(sorted(STRATEGIES))})")
    specs = {spec.name: spec for spec in strategy.params}
    unknown = [name for name in given if name not in specs]
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for {strategy_name} (allowed: {', '.join(specs)})")
    resolved = {name: _value(spec, given[name]) if name in given else spec.default for name, spec in specs.items()}
    strategy.check(resolved)
    return resolved


def _value(spec: ParamSpec, given: object) -> int | float:
    wrong_type = ValueError(
        f"parameter {spec.name} must be {'an integer' if spec.kind is int else 'a number'}, got {given!r}"
    )
    accepted = Integral if spec.kind is int else Real
    if isinstance(given, str):
        try:
            value = spec.kind(given.strip())
        except ValueError:
            raise wrong_type from None
    elif isinstance(given, accepted) and not isinstance(given, bool):
        # `accepted` follows `kind`: int() only ever gets an Integral (which has __int__), float() a Real. mypy
        # cannot tie the two together and sees int() called with a Real.
        value = spec.kind(given)  # type: ignore[call-overload]
    else:
        raise wrong_type
    below = value <= spec.minimum if spec.above_minimum else value < spec.minimum
    if not math.isfinite(value) or below or value > spec.maximum:
        raise ValueError(f"parameter {spec.name} must be {spec.describe_range()}, got {given!r}")
    return value


def _require_order(params: Params, *names: str) -> None:
    for lower, upper in itertools.pairwise(names):
        if not params[lower] < params[upper]:
            raise ValueError(f"parameter {lower} ({params[lower]:g}) must be less than {upper} ({params[upper]:g})")


def _price(value: float, close: float) -> Decimal:
    # At least the close's precision, and never so few decimals that a small positive stop rounds to zero.
    return Decimal(f"{value:.{max(price_decimals(close), price_decimals(value))}f}")


def _atr(frame: pd.DataFrame, length: int) -> Floats:
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
    action = np.select([was_below & above, was_above & below], [_BUY, _SELL], _NONE)
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
    action = np.select([buy, broken | overbought], [_BUY, _SELL], _NONE)
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
    action = np.select([buy, sell], [_BUY, _SELL], _NONE)
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

STRATEGIES: Mapping[str, _Strategy] = MappingProxyType(
    {
        "sma_cross": _Strategy(
            params=(ParamSpec("fast", int, 10, 1, 499), ParamSpec("slow", int, 30, 2, 500), *_RISK_PARAMS),
            check=lambda params: _require_order(params, "fast", "slow"),
            compute=_compute_sma_cross,
            explain=_explain_sma_cross,
            horizon=lambda params: int(params["slow"]),
        ),
        "ema_rsi_volume": _Strategy(
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
        "rsi_reversion": _Strategy(
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
