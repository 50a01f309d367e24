"""The market context an LLM sees: compact numbers-only text per bar, from indicators computed once per history.

The context at bar t reads rows <= t only of an indicator table (`ai.indicators`, causal too), so a backtest may
build contexts at any index of one table: the text is byte-identical to a live run that only had the history up to
t. The facts it is built from and returns are in `ai.facts`, its number formats in `ai.context_text`.
"""

import math
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from ai.context_text import (
    Formatter,
    fixed,
    fixed_decimal,
    iso_minute,
    pairs,
    pct,
    pct_of,
    price_decimals,
    quantity_text,
    signed_pct,
    timeframe_label,
    utc_moment,
)
from ai.facts import AccountFacts, ContextOptions, MarketContext, PositionFacts, allowed_actions
from ai.indicators import (
    ATR_LENGTH,
    EMA_LENGTHS,
    INDICATOR_COLUMNS,
    OHLCV,
    RANGE_BARS,
    RETURN_BARS,
    RSI_LENGTH,
    VOLUME_MEAN_LENGTH,
    WARMUP_BARS,
    IndicatorTable,
)

_BLIND_BASE = 100.0


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
    fmt = Formatter(scale, price_decimals(start_close * scale, significant=5, minimum=0))
    bar_time = utc_moment(int(table.open_ns[index]))
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


def _money_decimals(account: AccountFacts) -> int:
    """One precision for every amount of a context: about six significant digits of the equity, at least two."""
    reference = max(abs(account.equity), account.free_quote, account.min_order_notional)
    if not reference:
        return 2
    return min(8, max(2, 6 - (reference.adjusted() + 1)))


def _header(options: ContextOptions, bar_time: datetime, start_offset: int) -> str:
    if options.blind:
        return pairs(
            ("timeframe", options.timeframe),
            ("prices", f"rebased_close_at_bar_{start_offset}_is_100"),
            ("volume", f"ratio_to_mean{VOLUME_MEAN_LENGTH}"),
        )
    return pairs(("symbol", options.symbol), ("timeframe", options.timeframe), ("bar_open", iso_minute(bar_time)))


def _indicator_lines(row: dict[str, float], fmt: Formatter) -> list[str]:
    close, p = row["close"], fmt.price
    high_range, low_range = row[f"high{RANGE_BARS}"], row[f"low{RANGE_BARS}"]
    atr = row[f"atr{ATR_LENGTH}"]
    return [
        pairs(("close", p(close)), *((f"ret_{n}", signed_pct(row[f"ret_{n}_pct"])) for n in RETURN_BARS)),
        pairs(
            *((f"ema{n}", p(row[f"ema{n}"])) for n in EMA_LENGTHS),
            *((f"close_vs_ema{n}", pct_of(close, row[f"ema{n}"])) for n in EMA_LENGTHS),
        ),
        pairs(
            (f"rsi{RSI_LENGTH}", fixed(row[f"rsi{RSI_LENGTH}"], 1)),
            ("macd", p(row["macd"])),
            ("macd_signal", p(row["macd_signal"])),
            ("macd_hist", p(row["macd_hist"])),
        ),
        pairs(
            ("bb_lower", p(row["bb_lower"])),
            ("bb_mid", p(row["bb_mid"])),
            ("bb_upper", p(row["bb_upper"])),
            ("bb_pct_b", fixed(row["bb_pct_b"], 2)),
            ("bb_width", pct(row["bb_width_pct"])),
        ),
        pairs(
            (f"atr{ATR_LENGTH}", p(atr)),
            ("atr_pct", pct(100 * atr / close)),
            (f"volume_ratio{VOLUME_MEAN_LENGTH}", fixed(row[f"volume_ratio{VOLUME_MEAN_LENGTH}"], 2)),
        ),
        pairs(
            (f"high{RANGE_BARS}", p(high_range)),
            (f"close_vs_high{RANGE_BARS}", pct_of(close, high_range)),
            (f"low{RANGE_BARS}", p(low_range)),
            (f"close_vs_low{RANGE_BARS}", pct_of(close, low_range)),
        ),
    ]


def _recent_lines(
    recent: list[list[float]], row: dict[str, float], options: ContextOptions, start_offset: int, fmt: Formatter
) -> list[str]:
    p = fmt.price
    if options.blind:
        mean = row[f"volume_mean{VOLUME_MEAN_LENGTH}"]
        divisor = mean if math.isfinite(mean) and mean > 0 else math.nan
        volume_header = f"vol_x_mean{VOLUME_MEAN_LENGTH}"

        def volume(value: float) -> str:
            return fixed(value / divisor, 2)
    else:
        largest = max(bar[4] for bar in recent)
        decimals = 0 if largest <= 0 else min(8, max(0, 4 - (math.floor(math.log10(largest)) + 1)))
        volume_header = "volume"

        def volume(value: float) -> str:
            return fixed(value, decimals)

    lines = [f"bars offset,open,high,low,close,{volume_header}"]
    for offset, (open_, high, low, close, vol) in enumerate(recent, start=start_offset):
        lines.append(f"{offset},{p(open_)},{p(high)},{p(low)},{p(close)},{volume(vol)}")
    return lines


def _higher_timeframe_lines(
    frame: IndicatorTable | pd.DataFrame, close_ns: int, blind: bool, fmt: Formatter
) -> list[str]:
    table = frame if isinstance(frame, IndicatorTable) else IndicatorTable.from_frame(frame)
    label = timeframe_label(table.bar_ns)
    # Only bars that closed by the current bar's close: open + duration <= close.
    last = int(np.searchsorted(table.open_ns + table.bar_ns, close_ns, side="right")) - 1
    if last < 0:
        return [pairs(("htf", label), ("closed_bars", "0"))]
    row = dict(zip(INDICATOR_COLUMNS, table.values[last].tolist(), strict=True))
    close, p = row["close"], fmt.price
    when = () if blind else (("bar_open", iso_minute(utc_moment(int(table.open_ns[last])))),)
    return [
        pairs(
            ("htf", label),
            *when,
            ("close", p(close)),
            *((f"ret_{n}", signed_pct(row[f"ret_{n}_pct"])) for n in RETURN_BARS[:2]),
            (f"rsi{RSI_LENGTH}", fixed(row[f"rsi{RSI_LENGTH}"], 1)),
            ("macd_hist", p(row["macd_hist"])),
            ("atr_pct", pct(100 * row[f"atr{ATR_LENGTH}"] / close)),
        ),
        pairs(
            *((f"htf_ema{n}", p(row[f"ema{n}"])) for n in EMA_LENGTHS),
            *((f"htf_close_vs_ema{n}", pct_of(close, row[f"ema{n}"])) for n in EMA_LENGTHS),
        ),
    ]


def _position_line(
    position: PositionFacts | None,
    last_close: Decimal,
    price_factor: Decimal,
    blind: bool,
    fmt: Formatter,
    money_decimals: int,
) -> str:
    if position is None or position.quantity == 0:
        return "position=none"
    value = position.quantity * last_close
    pnl = (last_close - position.entry_price) * position.quantity
    pnl_pct = float(100 * (last_close / position.entry_price - 1))
    # A quantity next to a quote value would give away the real price level in blind mode.
    quantity = () if blind else (("qty", quantity_text(position.quantity)),)
    return pairs(
        ("position", "long"),
        *quantity,
        ("entry", fmt.price_decimal(position.entry_price, price_factor)),
        ("value", fixed_decimal(value, money_decimals)),
        ("upnl", fixed_decimal(pnl, money_decimals)),
        ("upnl_pct", signed_pct(pnl_pct)),
    )


def _account_line(account: AccountFacts, blind: bool, money_decimals: int) -> str:
    currency = () if blind else (("quote", account.quote_currency),)
    return pairs(
        ("account", "spot"),
        *currency,
        ("equity", fixed_decimal(account.equity, money_decimals)),
        ("free", fixed_decimal(account.free_quote, money_decimals)),
        ("min_order", fixed_decimal(account.min_order_notional, money_decimals)),
    )
