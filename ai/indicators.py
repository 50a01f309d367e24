"""Indicators for the market context, computed once per history with pandas-ta.

Everything is causal: every indicator at row t depends on rows <= t only, so a backtest may call
`compute_indicators` once over the whole history and build contexts (`ai.context`) at any index: the text is
byte-identical to a live run that only had the history up to t.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

OHLCV = ("open", "high", "low", "close", "volume")
EMA_LENGTHS = (20, 50, 200)
RSI_LENGTH = 14
ATR_LENGTH = 14

# pandas-ta returns no MACD(12, 26, 9) at all for fewer rows than slow + signal - 1.
_MACD_VALID_FROM = 26 + 9 - 1
BB_LENGTH = 20
BB_STD = 2.0
VOLUME_MEAN_LENGTH = 20
RETURN_BARS = (1, 6, 24)
RANGE_BARS = 50

# A context needs every indicator valid at its bar. The longest is EMA200, which pandas-ta seeds with the plain SMA
# of bars 0..199; from bar 200 on it is a true EMA, and the RSI14/ATR14 seeds weigh less than 1e-6 by then.
WARMUP_BARS = 200
INDICATOR_COLUMNS = (
    *OHLCV,
    *(f"ema{n}" for n in EMA_LENGTHS),
    f"rsi{RSI_LENGTH}",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_lower",
    "bb_mid",
    "bb_upper",
    "bb_pct_b",
    "bb_width_pct",
    f"atr{ATR_LENGTH}",
    f"volume_mean{VOLUME_MEAN_LENGTH}",
    f"volume_ratio{VOLUME_MEAN_LENGTH}",
    *(f"ret_{n}_pct" for n in RETURN_BARS),
    f"high{RANGE_BARS}",
    f"low{RANGE_BARS}",
)

# Bollinger bands narrower than this (relative to the mid) come from flat prices; %B would be float noise there.
_FLAT_BAND = 1e-9
_RSI_SEED_WEIGHT = 1e-3


@dataclass(frozen=True, eq=False)
class IndicatorTable:
    """The indicator frame as plain arrays, made once so that each context costs microseconds, not pandas calls."""

    open_ns: NDArray[np.int64]
    bar_ns: int
    values: NDArray[np.float64]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "IndicatorTable":
        missing = [name for name in INDICATOR_COLUMNS if name not in frame.columns]
        if missing:
            raise ValueError(f"not an indicator frame from compute_indicators: missing column(s) {', '.join(missing)}")
        index = _check_index(frame)
        open_ns = index.as_unit("ns").asi8
        steps = np.diff(open_ns)
        if steps.size == 0:
            raise ValueError("need at least two bars to tell the bar duration")
        # Gaps only lengthen a step, so the shortest step is the bar duration.
        bar_ns = int(steps.min())
        values = frame[list(INDICATOR_COLUMNS)].to_numpy(dtype=np.float64)
        return cls(open_ns=open_ns, bar_ns=bar_ns, values=values)

    def __len__(self) -> int:
        return len(self.open_ns)


def rsi_warmup_bars(length: int) -> int:
    """Bars before an RSI of `length` counts as valid.

    pandas-ta seeds RSI with the first price change rather than an average of the first `length` changes (as TA-Lib
    does); the seed's weight decays as (1 - 1/length)**bars, and below 1e-3 the two agree to a tenth of a point.
    """
    return max(length + 1, math.ceil(math.log(_RSI_SEED_WEIGHT) / math.log1p(-1 / length)))


def rsi_with_warmup(close: pd.Series, length: int = RSI_LENGTH) -> pd.Series:
    """pandas-ta's RSI, NaN before `rsi_warmup_bars(length)`."""
    import pandas_ta as ta  # pandas-ta (with numba) takes ~1.5 s to import: only computing indicators pays for it

    rsi = _series_or_nan(ta.rsi(close, length=length, talib=False), close.index)
    rsi.iloc[: rsi_warmup_bars(length)] = np.nan
    return rsi


def compute_indicators(candles: pd.DataFrame) -> pd.DataFrame:
    """Every indicator the context shows, for every bar of `candles`; NaN where an indicator is not valid yet.

    `candles`: float columns open, high, low, close, volume and an ascending, tz-aware UTC DatetimeIndex of bar open
    times. Compute once per history and slice causally: row t depends on rows <= t only.
    """
    import pandas_ta as ta  # pandas-ta (with numba) takes ~1.5 s to import: only computing indicators pays for it

    _check_candles(candles)
    index = candles.index
    open_, high, low, close, volume = (candles[name].astype(np.float64) for name in OHLCV)
    columns: dict[str, pd.Series] = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for length in EMA_LENGTHS:
        columns[f"ema{length}"] = _series_or_nan(ta.ema(close, length=length, talib=False), index)
    columns[f"rsi{RSI_LENGTH}"] = rsi_with_warmup(close)

    macd = ta.macd(close, fast=12, slow=26, signal=9, talib=False)
    # pandas-ta orders MACD columns [MACD, MACDh, MACDs]: line, histogram, signal.
    for position, name in enumerate(("macd", "macd_hist", "macd_signal")):
        column = None if macd is None else macd.iloc[:, position]
        columns[name] = _series_or_nan(column, index, valid_from=_MACD_VALID_FROM)

    bands = ta.bbands(close, length=BB_LENGTH, lower_std=BB_STD, upper_std=BB_STD, talib=False)
    for prefix, name in (("BBL_", "bb_lower"), ("BBM_", "bb_mid"), ("BBU_", "bb_upper")):
        label = None if bands is None else next(c for c in bands.columns if c.startswith(prefix))
        columns[name] = _series_or_nan(None if label is None else bands[label], index)
    # %B and width are derived here: pandas-ta adds an epsilon to the whole series when any band width is zero, which
    # would make every row depend on whether a flat stretch exists anywhere, future rows included.
    width = columns["bb_upper"] - columns["bb_lower"]
    flat = width <= _FLAT_BAND * columns["bb_mid"]
    columns["bb_pct_b"] = ((close - columns["bb_lower"]) / width).mask(flat)
    columns["bb_width_pct"] = 100 * width / columns["bb_mid"]

    atr = ta.atr(high, low, close, length=ATR_LENGTH, talib=False)
    columns[f"atr{ATR_LENGTH}"] = _series_or_nan(atr, index, valid_from=ATR_LENGTH + 1)
    volume_mean = _series_or_nan(ta.sma(volume, length=VOLUME_MEAN_LENGTH, talib=False), index)
    columns[f"volume_mean{VOLUME_MEAN_LENGTH}"] = volume_mean
    # Exchange outages leave zero-volume bars; a ratio to a zero mean is not a number, not infinity.
    columns[f"volume_ratio{VOLUME_MEAN_LENGTH}"] = (volume / volume_mean.where(volume_mean > 0)).astype(np.float64)
    for bars in RETURN_BARS:
        columns[f"ret_{bars}_pct"] = 100 * (close / close.shift(bars) - 1)
    columns[f"high{RANGE_BARS}"] = high.rolling(RANGE_BARS).max()
    columns[f"low{RANGE_BARS}"] = low.rolling(RANGE_BARS).min()
    return pd.DataFrame({name: columns[name] for name in INDICATOR_COLUMNS}, index=index)


def _series_or_nan(series: pd.Series | None, index: pd.Index, valid_from: int = 0) -> pd.Series:
    """pandas-ta returns None when the history is shorter than the indicator; that is "not valid yet" (NaN).

    `valid_from`: the shortest history (in rows) for which pandas-ta returns a result at all. Some indicators have
    values earlier in a long history (ATR14 from row 14, the MACD line from row 26) yet None on a history of that
    length; masking those rows keeps a row's value independent of how much history follows it.
    """
    if series is None:
        return pd.Series(np.nan, index=index, dtype=np.float64)
    values = series.astype(np.float64)
    values.iloc[: max(valid_from - 1, 0)] = np.nan
    return values


def _check_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    """The frame's index, once it is known to be a tz-aware UTC DatetimeIndex of unique, ascending open times."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ValueError("candles need a tz-aware UTC DatetimeIndex of bar open times")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError("candle open times must be unique and ascending")
    return index


def _check_candles(candles: pd.DataFrame) -> None:
    missing = [name for name in OHLCV if name not in candles.columns]
    if missing:
        raise ValueError(f"candles lack column(s) {', '.join(missing)}; expected {', '.join(OHLCV)}")
    _check_index(candles)
