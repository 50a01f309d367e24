"""The fingerprint of an AI backtest run: every input its answers depend on, so an identical re-run can replay them."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd


def run_fingerprint(
    inputs: Mapping[str, Any],
    candles: pd.DataFrame,
    provider: str,
    model: str,
    higher_timeframe_bars: int,
    prompt_version: str,
    schema_version: str,
) -> str:
    """sha256 (hex) over the run's answer-shaping inputs and the candle window it decides on.

    `inputs`: the run's settings as JSON-ready values (symbol, timeframe, window, cadence, balance, fees, risk,
    blind mode...), without how answers are obtained (paid or cache only), which does not change them.
    `candles`: the float OHLCV frame the run reads (first and last bar, count and the sum of closes identify it).
    """
    material = json.dumps(
        {
            "request": dict(inputs),
            "provider": provider,
            "model": model,
            "higher_timeframe_bars": higher_timeframe_bars,
            "prompt": prompt_version,
            "schema": schema_version,
            "bars": len(candles),
            "first": str(candles.index[0]),
            "last": str(candles.index[-1]),
            "closes": float(candles["close"].sum()),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()
