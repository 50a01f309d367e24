"""Deterministic classic strategies behind the "rules:STRATEGY" signal source: the same Signal, at zero cost.

`prepare` computes every array once over a whole history, after which `signal_at` is a few lookups, so a backtest
over 33k bars costs milliseconds. As with the context, the answer at bar t depends on rows <= t only.

A BUY carries entry = close, stop = close - stop_atr x ATR, take profit = close + target_atr x ATR (none when
target_atr is 0). A proposal the caller does not allow (no BUY without free balance, no SELL without a position)
becomes a HOLD that says so. HOLD confidence is 0: a rule has no opinion when it does not fire.

The strategies themselves, with their parameters and defaults (`STRATEGIES`), are in `ai.strategies`.
"""

import math
from collections.abc import Collection, Mapping
from decimal import Decimal
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import pandas as pd

from ai.actions import Action
from ai.context_text import price_decimals
from ai.outcome import hold
from ai.rule_types import BUY, NONE, ParamSpec, Prepared
from ai.signal import Signal
from ai.strategies import STRATEGIES, atr_values

_OHLCV = ("open", "high", "low", "close", "volume")

# An ATR this small comes from flat, zero-volume bars; a stop that close to the entry would be noise.
_MIN_ATR_FRACTION = 1e-4
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
    atr = atr_values(frame, int(resolved["atr_length"]))
    action, confidence, features = strategy.compute(frame, resolved, atr)
    close = frame["close"].to_numpy()
    target = close + resolved["target_atr"] * atr if resolved["target_atr"] > 0 else np.full_like(close, np.nan)
    buy = action == BUY
    # A BUY needs a usable stop: a real ATR and a stop above zero.
    usable = (atr >= _MIN_ATR_FRACTION * close) & (close - resolved["stop_atr"] * atr > 0)
    action = np.where(buy & ~usable, NONE, action).astype(np.int8)
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
    if code == NONE:
        return _HOLD
    action = Action.BUY if code == BUY else Action.SELL
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


def _price(value: float, close: float) -> Decimal:
    # At least the close's precision, and never so few decimals that a small positive stop rounds to zero.
    return Decimal(f"{value:.{max(price_decimals(close), price_decimals(value))}f}")
