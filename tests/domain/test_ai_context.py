import re
from decimal import Decimal
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai.actions import Action
from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions, PositionFacts, allowed_actions
from ai.indicators import INDICATOR_COLUMNS, WARMUP_BARS, IndicatorTable, compute_indicators
from tests.conftest import PROJECT_ROOT

CANDLES = PROJECT_ROOT / "data" / "candles"
BTC_1H_2024 = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
BTC_1D_2024 = "binance_BTCUSDT_1d_2024-01_2024-09.csv"
BTC_1H_2017 = "binance_BTCUSDT_1h_2017-08_2021-06.csv"
ACCOUNT = AccountFacts(Decimal("1000"), Decimal("500"), "USDT", Decimal("5"))
POSITION = PositionFacts(Decimal("0.015"), Decimal("60000"))
NORMAL = ContextOptions("BTC/USDT", "1h")
BLIND = ContextOptions("BTC/USDT", "1h", blind=True)
ALL = (Action.BUY, Action.SELL, Action.HOLD)


@cache
def candles(name: str) -> pd.DataFrame:
    frame = pd.read_csv(CANDLES / name)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True))
    return frame.astype(np.float64)


@cache
def indicators(name: str) -> pd.DataFrame:
    return compute_indicators(candles(name))


@cache
def table(name: str) -> IndicatorTable:
    return IndicatorTable.from_frame(indicators(name))


def exact(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def values(text: str, key: str) -> list[str]:
    return re.findall(rf"(?:^|\s){re.escape(key)}=(\S+)", text)


def bars(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("bars ")) + 1
    rows = []
    for line in lines[start:]:
        if not re.match(r"-?\d+,", line):
            break
        rows.append(line.split(","))
    return rows


def test_indicator_columns_follow_pandas_ta_and_warm_up_as_documented():
    frame = indicators(BTC_1H_2024)
    close = candles(BTC_1H_2024)["close"]
    assert tuple(frame.columns) == INDICATOR_COLUMNS
    assert frame["ema200"].iloc[:199].isna().all() and frame["ema200"].iloc[199:].notna().all()
    assert frame.iloc[WARMUP_BARS:].drop(columns=["bb_pct_b", "volume_ratio20"]).notna().all().all()
    # The histogram is line minus signal: catches a mix-up of pandas-ta's [MACD, MACDh, MACDs] order.
    np.testing.assert_allclose(frame["macd_hist"], frame["macd"] - frame["macd_signal"], atol=1e-9)
    np.testing.assert_allclose(frame["bb_mid"].iloc[19:], close.rolling(20).mean().iloc[19:], rtol=1e-12)
    assert (frame["bb_lower"] < frame["bb_mid"]).iloc[19:].all() and (frame["bb_mid"] < frame["bb_upper"]).iloc[
        19:
    ].all()
    np.testing.assert_allclose(frame["ret_24_pct"].iloc[24:], 100 * (close / close.shift(24) - 1).iloc[24:])
    assert frame["rsi14"].iloc[:90].isna().all() and frame["rsi14"].iloc[WARMUP_BARS:].between(0, 100).all()


def test_same_input_gives_byte_identical_text_from_a_table_or_a_frame():
    first = build_context(table(BTC_1H_2024), 3000, POSITION, ACCOUNT, NORMAL, table(BTC_1D_2024))
    again = build_context(indicators(BTC_1H_2024), 3000, POSITION, ACCOUNT, NORMAL, indicators(BTC_1D_2024))
    assert first.text == again.text
    assert first == again


@settings(max_examples=25, deadline=None)
@given(index=st.integers(min_value=WARMUP_BARS, max_value=len(candles(BTC_1H_2024)) - 1), blind=st.booleans())
def test_context_is_causal_at_random_bars(index, blind):
    options = BLIND if blind else NORMAL
    from_full = build_context(table(BTC_1H_2024), index, POSITION, ACCOUNT, options)
    from_prefix = build_context(
        compute_indicators(candles(BTC_1H_2024).iloc[: index + 1]), index, POSITION, ACCOUNT, options
    )
    assert from_full.text == from_prefix.text
    assert from_full.last_close == exact(candles(BTC_1H_2024)["close"].iloc[index])


@pytest.mark.parametrize("index", [4205, 4215, 4224, 4226, 4240])
def test_context_is_causal_through_zero_volume_outages(index):
    # 2017-12 holds 33 flat zero-volume bars (rows 4192-4224): zero means, zero band widths, zero ranges.
    prefix = compute_indicators(candles(BTC_1H_2017).iloc[: index + 1])
    for options in (NORMAL, BLIND):
        text = build_context(table(BTC_1H_2017), index, None, ACCOUNT, options).text
        assert text == build_context(prefix, index, None, ACCOUNT, options).text
        assert "inf" not in text and "nan" not in text


def test_zero_volume_outage_shows_not_available_instead_of_noise():
    text = build_context(table(BTC_1H_2017), 4215, None, ACCOUNT, BLIND).text
    assert values(text, "volume_ratio20") == ["na"]
    assert values(text, "bb_pct_b") == ["na"]
    assert {row[5] for row in bars(text)} == {"na"}


@pytest.mark.parametrize("index", [0, 150, WARMUP_BARS - 1])
def test_contexts_inside_the_warm_up_are_refused(index):
    with pytest.raises(ValueError, match="warm-up"):
        build_context(table(BTC_1H_2024), index, None, ACCOUNT, NORMAL)


def test_first_bar_after_the_warm_up_is_accepted_and_out_of_range_is_refused():
    assert build_context(table(BTC_1H_2024), WARMUP_BARS, None, ACCOUNT, NORMAL).text
    with pytest.raises(ValueError, match="outside"):
        build_context(table(BTC_1H_2024), len(candles(BTC_1H_2024)), None, ACCOUNT, NORMAL)


def test_short_histories_compute_with_invalid_indicators_as_nan():
    frame = compute_indicators(candles(BTC_1H_2024).iloc[:30])
    assert frame["ema200"].isna().all() and frame["macd_signal"].isna().all()
    assert frame["ema20"].iloc[19:].notna().all()


def test_normal_text_is_compact_key_value_and_names_the_market():
    context = build_context(table(BTC_1H_2024), 5000, POSITION, ACCOUNT, NORMAL, table(BTC_1D_2024))
    text = context.text
    assert text.startswith("symbol=BTC/USDT timeframe=1h bar_open=2024-07-27T08:00Z\n")
    assert values(text, "close")[0] == "67986"  # five significant digits
    assert len(bars(text)) == NORMAL.recent_bars
    assert bars(text)[-1][0] == "0" and bars(text)[0][0] == str(1 - NORMAL.recent_bars)
    assert len(text) < 2500
    assert not re.search(r"\d[eE][+-]?\d|nan|inf|\d\.\d{11,}", text)
    assert text.splitlines()[-1] == "allowed_actions=BUY,SELL,HOLD"


def test_position_line_shows_unrealized_pnl_in_quote_and_percent():
    position = PositionFacts(Decimal("0.5"), Decimal("60000"))
    context = build_context(table(BTC_1H_2024), 5000, position, ACCOUNT, NORMAL)
    line = next(line for line in context.text.splitlines() if line.startswith("position="))
    pnl = (context.last_close - Decimal(60000)) * Decimal("0.5")
    assert line == (
        f"position=long qty=0.5 entry=60000 value={context.last_close / 2:.2f} upnl={pnl:.2f} "
        f"upnl_pct=+{float(100 * (context.last_close / 60000 - 1)):.2f}%"
    )
    flat = build_context(table(BTC_1H_2024), 5000, None, ACCOUNT, NORMAL)
    assert "position=none" in flat.text.splitlines()


@settings(max_examples=30, deadline=None)
@given(index=st.integers(min_value=WARMUP_BARS, max_value=len(candles(BTC_1H_2024)) - 1))
def test_blind_mode_hides_the_market_and_rebases_prices(index):
    context = build_context(table(BTC_1H_2024), index, POSITION, ACCOUNT, BLIND, table(BTC_1D_2024))
    text = context.text
    assert "BTC" not in text and "USDT" not in text and "2024" not in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", text)
    rows = bars(text)
    assert rows[0][0] == f"-{BLIND.recent_bars - 1}" and rows[0][4] == "100.00"
    real = candles(BTC_1H_2024)
    assert context.price_factor == exact(real["close"].iloc[index - BLIND.recent_bars + 1]) / 100
    assert context.last_close == exact(real["close"].iloc[index])
    blind_close = Decimal(values(text, "close")[0])
    assert abs(blind_close * context.price_factor - context.last_close) <= Decimal("0.005") * context.price_factor
    blind_ema = Decimal(values(text, "ema200")[0])
    real_ema = exact(indicators(BTC_1H_2024)["ema200"].iloc[index])
    assert abs(blind_ema * context.price_factor - real_ema) <= Decimal("0.005") * context.price_factor
    blind_entry = Decimal(values(text, "entry")[0])
    assert abs(blind_entry * context.price_factor - POSITION.entry_price) <= Decimal("0.005") * context.price_factor
    assert all(float(price) < 200 for row in rows for price in row[1:5])


def test_blind_mode_keeps_percentages_and_ratios_unchanged():
    normal = build_context(table(BTC_1H_2024), 4000, POSITION, ACCOUNT, NORMAL)
    blind = build_context(table(BTC_1H_2024), 4000, POSITION, ACCOUNT, BLIND)
    for key in ("ret_24", "rsi14", "close_vs_ema200", "bb_pct_b", "atr_pct", "volume_ratio20", "upnl_pct", "upnl"):
        assert values(normal.text, key) == values(blind.text, key)
    assert normal.price_factor == 1
    assert normal.bar_time == blind.bar_time


@pytest.mark.parametrize(
    ("quantity", "free", "minimum", "expected"),
    [
        (None, "500", "5", (Action.BUY, Action.HOLD)),
        (None, "4.99", "5", (Action.HOLD,)),
        (None, "0", "0", (Action.HOLD,)),
        ("0", "5", "5", (Action.BUY, Action.HOLD)),
        ("0.01", "500", "5", (Action.BUY, Action.SELL, Action.HOLD)),
        ("0.01", "1", "5", (Action.SELL, Action.HOLD)),
        ("0.00001", "500", "5", (Action.BUY, Action.HOLD)),  # 0.5 USDT of dust cannot be sold
        ("0.0001", "0", "5", (Action.SELL, Action.HOLD)),  # exactly 5 USDT at 50000
    ],
)
def test_allowed_actions_table(quantity, free, minimum, expected):
    position = None if quantity is None else PositionFacts(Decimal(quantity), Decimal("40000"))
    account = AccountFacts(Decimal("1000"), Decimal(free), "USDT", Decimal(minimum))
    assert allowed_actions(position, account, Decimal("50000")) == expected


def test_context_carries_the_allowed_actions():
    broke = AccountFacts(Decimal("10"), Decimal("1"), "USDT", Decimal("5"))
    context = build_context(table(BTC_1H_2024), 3000, None, broke, NORMAL)
    assert context.allowed_actions == (Action.HOLD,)
    assert context.text.endswith("allowed_actions=HOLD\n")


def test_higher_timeframe_uses_only_bars_closed_by_the_current_close():
    hourly = candles(BTC_1H_2024)
    before_midnight = hourly.index.get_loc(pd.Timestamp("2024-03-05T22:00Z"))
    last_hour = hourly.index.get_loc(pd.Timestamp("2024-03-05T23:00Z"))
    early = build_context(table(BTC_1H_2024), before_midnight, None, ACCOUNT, NORMAL, table(BTC_1D_2024))
    late = build_context(table(BTC_1H_2024), last_hour, None, ACCOUNT, NORMAL, table(BTC_1D_2024))
    assert re.search(r"^htf=1d bar_open=2024-03-04T00:00Z ", early.text, re.M)
    # The 23:00 bar closes at midnight, exactly when the 2024-03-05 daily bar closes.
    assert re.search(r"^htf=1d bar_open=2024-03-05T00:00Z ", late.text, re.M)
    daily_close = candles(BTC_1D_2024)["close"].loc[pd.Timestamp("2024-03-05T00:00Z")]
    assert values(late.text, "close")[1] == f"{daily_close:.0f}"


def test_higher_timeframe_before_any_closed_bar_says_so():
    daily = candles(BTC_1D_2024)
    later_days = compute_indicators(daily.iloc[100:])
    context = build_context(table(BTC_1H_2024), 300, None, ACCOUNT, NORMAL, later_days)
    assert "htf=1d closed_bars=0" in context.text.splitlines()


@settings(max_examples=20, deadline=None)
@given(index=st.integers(min_value=WARMUP_BARS, max_value=len(candles(BTC_1H_2024)) - 1), blind=st.booleans())
def test_higher_timeframe_lines_match_a_daily_history_cut_at_the_current_close(index, blind):
    options = BLIND if blind else NORMAL
    hourly, daily = candles(BTC_1H_2024), candles(BTC_1D_2024)
    bar_close = hourly.index[index] + pd.Timedelta(hours=1)
    closed = daily[daily.index + pd.Timedelta(days=1) <= bar_close]
    full = build_context(table(BTC_1H_2024), index, POSITION, ACCOUNT, options, table(BTC_1D_2024))
    cut = build_context(table(BTC_1H_2024), index, POSITION, ACCOUNT, options, compute_indicators(closed))
    assert full.text == cut.text


def test_invalid_inputs_are_refused_with_clear_messages():
    with pytest.raises(ValueError, match="recent_bars"):
        ContextOptions("BTC/USDT", "1h", recent_bars=0)
    with pytest.raises(ValueError, match="negative"):
        PositionFacts(Decimal("-1"), Decimal("100"))
    with pytest.raises(ValueError, match="UTC"):
        compute_indicators(candles(BTC_1H_2024).reset_index(drop=True))
    with pytest.raises(ValueError, match="volume"):
        compute_indicators(candles(BTC_1H_2024).drop(columns="volume"))
    with pytest.raises(ValueError, match="missing column"):
        IndicatorTable.from_frame(candles(BTC_1H_2024))


def test_each_row_of_the_indicators_is_the_same_however_short_the_history_is():
    # Short histories take other code paths in pandas-ta (None below a minimum length); a row must not care.
    daily = candles(BTC_1D_2024)
    full = compute_indicators(daily)
    for rows in range(1, 240):
        last = compute_indicators(daily.iloc[:rows]).iloc[-1]
        pd.testing.assert_series_equal(last, full.iloc[rows - 1], check_names=False, rtol=1e-9)
