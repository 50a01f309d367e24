"""The rules strategies' data types: a parameter's spec, a strategy's parts, and its verdicts for a history."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ai.actions import Action

Params = Mapping[str, int | float]
Floats = NDArray[np.float64]

# What a strategy's compute returns: per-bar action codes (NONE, BUY, SELL), confidences, and quoted features.
Verdicts = tuple[NDArray[np.integer[Any]], Floats, dict[str, Floats]]
NONE, BUY, SELL = 0, 1, 2


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
class Strategy:
    params: tuple[ParamSpec, ...]
    check: Callable[[Params], None]
    compute: Callable[[pd.DataFrame, Params, Floats], Verdicts]
    explain: Callable[[Prepared, int, Action], tuple[str, list[str]]]
    horizon: Callable[[Params], int]
