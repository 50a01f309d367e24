"""The market context an LLM sees: indicators computed once per history, then compact numbers-only text per bar.

Everything is causal. The context at bar t reads rows <= t only, and every indicator at row t depends on rows <= t
only, so a backtest may call `compute_indicators` once over the whole history and build contexts at any index: the
text is byte-identical to a live run that only had the history up to t.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ai.actions import Action

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

MAX_RECENT_BARS = 48
# Bollinger bands narrower than this (relative to the mid) come from flat prices; %B would be float noise there.
_FLAT_BAND = 1e-9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_SECOND = 1_000_000_000
_UNIT_SECONDS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_BLIND_BASE = 100.0
_RSI_SEED_WEIGHT = 1e-3


@dataclass(frozen=True)
class PositionFacts:
    """The open spot long: quantity in base units and the average entry price."""

    quantity: Decimal
    entry_price: Decimal

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise ValueError(f"quantity {self.quantity} must not be negative (spot, long only)")
        if self.entry_price <= 0:
            raise ValueError(f"entry price {self.entry_price} must be positive")


@dataclass(frozen=True)
class AccountFacts:
    equity: Decimal
    free_quote: Decimal
    quote_currency: str
    min_order_notional: Decimal

    def __post_init__(self) -> None:
        if self.free_quote < 0:
            raise ValueError(f"free quote balance {self.free_quote} must not be negative")
        if self.min_order_notional < 0:
            raise ValueError(f"minimum order notional {self.min_order_notional} must not be negative")


@dataclass(frozen=True)
class ContextOptions:
    symbol: str
    timeframe: str
    blind: bool = False
    recent_bars: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.recent_bars <= MAX_RECENT_BARS:
            raise ValueError(f"recent_bars {self.recent_bars} must be between 1 and {MAX_RECENT_BARS}")


@dataclass(frozen=True)
class MarketContext:
    """The text for the model and the facts needed to check its answer.

    `last_close` is the real close of the bar; blind prices in `text` are real prices divided by `price_factor`
    (which is 1 when not blind). `bar_time` is the bar's open time (UTC), also in blind mode.
    """

    text: str
    allowed_actions: tuple[Action, ...]
    last_close: Decimal
    bar_time: datetime
    price_factor: Decimal


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


def price_decimals(reference: float, significant: int = 6, minimum: int = 2) -> int:
    """Decimals that give about `significant` digits for prices near `reference`, never fewer than `minimum`."""
    if not math.isfinite(reference) or reference <= 0:
        return max(minimum, 2)
    digits = math.floor(math.log10(reference)) + 1
    return min(10, max(minimum, significant - digits))


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


def allowed_actions(position: PositionFacts | None, account: AccountFacts, last_close: Decimal) -> tuple[Action, ...]:
    """Spot, long only, in the fixed order BUY, SELL, HOLD.

    BUY needs a free quote balance of at least the minimum order notional. SELL needs an open position whose value
    reaches the minimum order notional too: a smaller remainder is dust the exchange refuses to sell.
    """
    actions = []
    if account.free_quote > 0 and account.free_quote >= account.min_order_notional:
        actions.append(Action.BUY)
    if position is not None and position.quantity > 0 and position.quantity * last_close >= account.min_order_notional:
        actions.append(Action.SELL)
    actions.append(Action.HOLD)
    return tuple(actions)


def build_context(
    indicators: IndicatorTable | pd.DataFrame,
    index: int,
    position: PositionFacts | None,
    account: AccountFacts,
    options: ContextOptions,
    higher_timeframe: IndicatorTable | pd.DataFrame | None = None,
) -> MarketContext:
    """The context at bar `index` (a row position into `indicators`), reading rows <= index only.

    Pass `IndicatorTable`s when building many contexts from one frame; a DataFrame is converted on every call.
    `higher_timeframe` (indicators of e.g. 1d candles) contributes its last bar that closed at or before this bar's
    close.
    """
    table = indicators if isinstance(indicators, IndicatorTable) else IndicatorTable.from_frame(indicators)
    if not 0 <= index < len(table):
        raise ValueError(f"bar index {index} is outside the indicator frame (0..{len(table) - 1})")
    if index < WARMUP_BARS:
        raise ValueError(
            f"bar index {index} is inside the indicator warm-up: a context needs at least {WARMUP_BARS} earlier bars"
        )
    row = dict(zip(INDICATOR_COLUMNS, table.values[index].tolist(), strict=True))
    first = index - options.recent_bars + 1
    recent = table.values[first : index + 1, : len(OHLCV)].tolist()
    real_close = row["close"]
    last_close = Decimal(repr(real_close))
    start_close = recent[0][3]
    if options.blind:
        scale = _BLIND_BASE / start_close
        price_factor = Decimal(repr(start_close)) / Decimal(repr(_BLIND_BASE))
    else:
        scale = 1.0
        price_factor = Decimal(1)
    # Five significant digits are plenty to decide on and save tokens: digits tokenize densely.
    fmt = _Formatter(scale, price_decimals(start_close * scale, significant=5, minimum=0))
    bar_time = _moment(int(table.open_ns[index]))
    actions = allowed_actions(position, account, last_close)

    lines = [_header(options, bar_time, first - index)]
    lines += _indicator_lines(row, fmt)
    lines += _recent_lines(recent, row, options, first - index, fmt)
    if higher_timeframe is not None:
        close_ns = int(table.open_ns[index]) + table.bar_ns
        lines += _higher_timeframe_lines(higher_timeframe, close_ns, options.blind, fmt)
    money_decimals = _money_decimals(account)
    lines.append(_position_line(position, last_close, price_factor, options.blind, fmt, money_decimals))
    lines.append(_account_line(account, options.blind, money_decimals))
    lines.append("allowed_actions=" + ",".join(action.value for action in actions))
    return MarketContext(
        text="\n".join(lines) + "\n",
        allowed_actions=actions,
        last_close=last_close,
        bar_time=bar_time,
        price_factor=price_factor,
    )


class _Formatter:
    """Fixed-decimal numbers; prices are multiplied by `scale` (1, or the blind rebasing) first."""

    def __init__(self, scale: float, price_decimals: int) -> None:
        self.scale = scale
        self.price_decimals = price_decimals

    def price(self, value: float) -> str:
        return _fixed(value * self.scale, self.price_decimals)

    def price_decimal(self, value: Decimal, factor: Decimal) -> str:
        return _fixed_decimal(value / factor, self.price_decimals)


def _fixed(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "na"
    # Adding 0.0 turns a rounded -0.0 into 0.0, so tiny negatives never print as "-0.00".
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def _signed_pct(value: float, decimals: int = 2) -> str:
    if not math.isfinite(value):
        return "na"
    return f"{round(value, decimals) + 0.0:+.{decimals}f}%"


def _pct(value: float) -> str:
    return "na" if not math.isfinite(value) else _fixed(value, 2) + "%"


def _fixed_decimal(value: Decimal, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _money_decimals(account: AccountFacts) -> int:
    """One precision for every amount of a context: about six significant digits of the equity, at least two."""
    reference = max(abs(account.equity), account.free_quote, account.min_order_notional)
    if not reference:
        return 2
    return min(8, max(2, 6 - (reference.adjusted() + 1)))


def _quantity(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _pct_of(value: float, reference: float) -> str:
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return "na"
    return _signed_pct(100 * (value / reference - 1))


def _timeframe_label(bar_ns: int) -> str:
    seconds = bar_ns // _NS_PER_SECOND
    return next(f"{seconds // size}{unit}" for unit, size in _UNIT_SECONDS if seconds % size == 0)


def _moment(epoch_ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=epoch_ns // 1000)


def _iso_minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _pairs(*items: tuple[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in items)


def _header(options: ContextOptions, bar_time: datetime, start_offset: int) -> str:
    if options.blind:
        return _pairs(
            ("timeframe", options.timeframe),
            ("prices", f"rebased_close_at_bar_{start_offset}_is_100"),
            ("volume", f"ratio_to_mean{VOLUME_MEAN_LENGTH}"),
        )
    return _pairs(("symbol", options.symbol), ("timeframe", options.timeframe), ("bar_open", _iso_minute(bar_time)))


def _indicator_lines(row: dict[str, float], fmt: _Formatter) -> list[str]:
    close, p = row["close"], fmt.price
    high_range, low_range = row[f"high{RANGE_BARS}"], row[f"low{RANGE_BARS}"]
    atr = row[f"atr{ATR_LENGTH}"]
    return [
        _pairs(("close", p(close)), *((f"ret_{n}", _signed_pct(row[f"ret_{n}_pct"])) for n in RETURN_BARS)),
        _pairs(
            *((f"ema{n}", p(row[f"ema{n}"])) for n in EMA_LENGTHS),
            *((f"close_vs_ema{n}", _pct_of(close, row[f"ema{n}"])) for n in EMA_LENGTHS),
        ),
        _pairs(
            (f"rsi{RSI_LENGTH}", _fixed(row[f"rsi{RSI_LENGTH}"], 1)),
            ("macd", p(row["macd"])),
            ("macd_signal", p(row["macd_signal"])),
            ("macd_hist", p(row["macd_hist"])),
        ),
        _pairs(
            ("bb_lower", p(row["bb_lower"])),
            ("bb_mid", p(row["bb_mid"])),
            ("bb_upper", p(row["bb_upper"])),
            ("bb_pct_b", _fixed(row["bb_pct_b"], 2)),
            ("bb_width", _pct(row["bb_width_pct"])),
        ),
        _pairs(
            (f"atr{ATR_LENGTH}", p(atr)),
            ("atr_pct", _pct(100 * atr / close)),
            (f"volume_ratio{VOLUME_MEAN_LENGTH}", _fixed(row[f"volume_ratio{VOLUME_MEAN_LENGTH}"], 2)),
        ),
        _pairs(
            (f"high{RANGE_BARS}", p(high_range)),
            (f"close_vs_high{RANGE_BARS}", _pct_of(close, high_range)),
            (f"low{RANGE_BARS}", p(low_range)),
            (f"close_vs_low{RANGE_BARS}", _pct_of(close, low_range)),
        ),
    ]


def _recent_lines(
    recent: list[list[float]], row: dict[str, float], options: ContextOptions, start_offset: int, fmt: _Formatter
) -> list[str]:
    p = fmt.price
    if options.blind:
        mean = row[f"volume_mean{VOLUME_MEAN_LENGTH}"]
        divisor = mean if math.isfinite(mean) and mean > 0 else math.nan
        volume_header = f"vol_x_mean{VOLUME_MEAN_LENGTH}"

        def volume(value: float) -> str:
            return _fixed(value / divisor, 2)
    else:
        largest = max(bar[4] for bar in recent)
        decimals = 0 if largest <= 0 else min(8, max(0, 4 - (math.floor(math.log10(largest)) + 1)))
        volume_header = "volume"

        def volume(value: float) -> str:
            return _fixed(value, decimals)

    lines = [f"bars offset,open,high,low,close,{volume_header}"]
    for offset, (open_, high, low, close, vol) in enumerate(recent, start=start_offset):
        lines.append(f"{offset},{p(open_)},{p(high)},{p(low)},{p(close)},{volume(vol)}")
    return lines


def _higher_timeframe_lines(
    frame: IndicatorTable | pd.DataFrame, close_ns: int, blind: bool, fmt: _Formatter
) -> list[str]:
    table = frame if isinstance(frame, IndicatorTable) else IndicatorTable.from_frame(frame)
    label = _timeframe_label(table.bar_ns)
    # Only bars that closed by the current bar's close: open + duration <= close.
    last = int(np.searchsorted(table.open_ns + table.bar_ns, close_ns, side="right")) - 1
    if last < 0:
        return [_pairs(("htf", label), ("closed_bars", "0"))]
    row = dict(zip(INDICATOR_COLUMNS, table.values[last].tolist(), strict=True))
    close, p = row["close"], fmt.price
    when = () if blind else (("bar_open", _iso_minute(_moment(int(table.open_ns[last])))),)
    return [
        _pairs(
            ("htf", label),
            *when,
            ("close", p(close)),
            *((f"ret_{n}", _signed_pct(row[f"ret_{n}_pct"])) for n in RETURN_BARS[:2]),
            (f"rsi{RSI_LENGTH}", _fixed(row[f"rsi{RSI_LENGTH}"], 1)),
            ("macd_hist", p(row["macd_hist"])),
            ("atr_pct", _pct(100 * row[f"atr{ATR_LENGTH}"] / close)),
        ),
        _pairs(
            *((f"htf_ema{n}", p(row[f"ema{n}"])) for n in EMA_LENGTHS),
            *((f"htf_close_vs_ema{n}", _pct_of(close, row[f"ema{n}"])) for n in EMA_LENGTHS),
        ),
    ]


def _position_line(
    position: PositionFacts | None,
    last_close: Decimal,
    price_factor: Decimal,
    blind: bool,
    fmt: _Formatter,
    money_decimals: int,
) -> str:
    if position is None or position.quantity == 0:
        return "position=none"
    value = position.quantity * last_close
    pnl = (last_close - position.entry_price) * position.quantity
    pnl_pct = float(100 * (last_close / position.entry_price - 1))
    # A quantity next to a quote value would give away the real price level in blind mode.
    quantity = () if blind else (("qty", _quantity(position.quantity)),)
    return _pairs(
        ("position", "long"),
        *quantity,
        ("entry", fmt.price_decimal(position.entry_price, price_factor)),
        ("value", _fixed_decimal(value, money_decimals)),
        ("upnl", _fixed_decimal(pnl, money_decimals)),
        ("upnl_pct", _signed_pct(pnl_pct)),
    )


def _account_line(account: AccountFacts, blind: bool, money_decimals: int) -> str:
    currency = () if blind else (("quote", account.quote_currency),)
    return _pairs(
        ("account", "spot"),
        *currency,
        ("equity", _fixed_decimal(account.equity, money_decimals)),
        ("free", _fixed_decimal(account.free_quote, money_decimals)),
        ("min_order", _fixed_decimal(account.min_order_notional, money_decimals)),
    )


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
