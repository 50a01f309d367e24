"""Indicator context cost: compute_indicators once over BTC/USDT 1h 2017-2021, then build_context at many bars.

Run: .venv/bin/python benchmarks/context_build.py [--contexts 2000]
Prints one table; nothing here is a test. Token counts are estimates (characters / 4), not a provider's tokenizer.
"""

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions, PositionFacts
from ai.indicators import WARMUP_BARS, IndicatorTable, compute_indicators

DATA = Path(__file__).resolve().parent.parent / "data" / "candles"
HOURLY = DATA / "binance_BTCUSDT_1h_2017-08_2021-06.csv"
DAILY = DATA / "binance_BTCUSDT_1d_2017-08_2021-06.csv"
ACCOUNT = AccountFacts(Decimal("1000"), Decimal("400"), "USDT", Decimal("5"))
POSITION = PositionFacts(Decimal("0.01"), Decimal("9000"))


def load(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True))
    return frame.astype(np.float64)


def timed[T](action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, (time.perf_counter() - start) * 1000


def context_row(
    label: str, table: IndicatorTable | pd.DataFrame, daily: IndicatorTable, indices: list[int], blind: bool
) -> tuple[str, int, float, float, float, float]:
    options = ContextOptions("BTC/USDT", "1h", blind=blind)
    times, sizes = [], []
    for index in indices:
        position = POSITION if index % 2 else None
        start = time.perf_counter()
        context = build_context(table, index, position, ACCOUNT, options, daily)
        times.append((time.perf_counter() - start) * 1000)
        sizes.append(len(context.text))
    p95 = statistics.quantiles(times, n=20)[-1]
    chars = statistics.fmean(sizes)
    return label, len(indices), statistics.fmean(times), p95, chars, chars / 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=2000)
    args = parser.parse_args()

    hourly, daily_candles = load(HOURLY), load(DAILY)
    # The first pandas-ta call compiles numba kernels; time it apart from the steady state.
    _, jit_ms = timed(lambda: compute_indicators(hourly.iloc[:300]))
    frame, compute_ms = timed(lambda: compute_indicators(hourly))
    table, table_ms = timed(lambda: IndicatorTable.from_frame(frame))
    daily = IndicatorTable.from_frame(compute_indicators(daily_candles))
    indices = sorted(random.Random(7).sample(range(WARMUP_BARS, len(hourly)), args.contexts))

    print(f"BTC/USDT 1h, {len(hourly):,} bars; higher timeframe 1d, {len(daily_candles):,} bars")
    print(f"first pandas-ta call (numba JIT, 300 bars): {jit_ms:8.1f} ms")
    print(f"compute_indicators, all bars:               {compute_ms:8.1f} ms")
    print(f"IndicatorTable.from_frame:                  {table_ms:8.1f} ms")
    print()
    header = f"{'build_context':<28} {'contexts':>8} {'mean ms':>8} {'p95 ms':>8} {'chars':>7} {'~tokens':>8}"
    print(header)
    print("-" * len(header))
    rows = [
        context_row("normal, IndicatorTable", table, daily, indices, blind=False),
        context_row("blind, IndicatorTable", table, daily, indices, blind=True),
        context_row("normal, DataFrame per call", frame, daily, indices[:200], blind=False),
    ]
    for label, count, mean, p95, chars, tokens in rows:
        print(f"{label:<28} {count:>8} {mean:>8.3f} {p95:>8.3f} {chars:>7.0f} {tokens:>8.0f}")
    print("~tokens is an estimate (characters / 4), not a provider tokenizer's count.")


if __name__ == "__main__":
    main()
