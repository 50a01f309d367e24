"""What an LLM call costs, from the provider's reported usage and the dated price table in ai/data/pricing.yaml."""

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from ai.prompts import SYSTEM_PROMPT
from ai.providers.base import Usage
from ai.signal import Signal

PRICING_FILE = Path(__file__).resolve().parent / "data" / "pricing.yaml"
PER_TOKENS = Decimal(1_000_000)
# Local, offline token estimate for reservations. Numbers-heavy text tokenizes densely (often 2-3 characters a
# token), so assume 2.5 bytes a token: reserving too much only delays a call, reserving too little overspends.
BYTES_PER_TOKEN_ESTIMATE = 2.5
MESSAGE_OVERHEAD_TOKENS = 50


class UnknownPriceError(ValueError):
    pass


@dataclass(frozen=True)
class TokenPrices:
    """USD per 1M tokens, by how the tokens are billed."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal

    def cost(self, usage: Usage) -> Decimal:
        total = (
            usage.input_tokens * self.input
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )
        return total / PER_TOKENS


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    peak_hours_utc: tuple[tuple[int, int], ...]
    deepseek: dict[str, dict[str, TokenPrices]]
    claude: dict[str, TokenPrices]

    def prices(self, provider: str, model: str, at: datetime) -> TokenPrices:
        if provider == "deepseek":
            periods = self._lookup(self.deepseek, provider, model)
            return periods["peak" if self.is_deepseek_peak(at) else "off_peak"]
        if provider == "claude":
            return self._lookup(self.claude, provider, model)
        raise UnknownPriceError(f"no prices for provider {provider!r} (known: claude, deepseek)")

    def worst_case_prices(self, provider: str, model: str) -> TokenPrices:
        """The highest price of every token kind at any time of day, for reservations."""
        if provider == "deepseek":
            periods = self._lookup(self.deepseek, provider, model).values()
            return TokenPrices(*(max(getattr(p, kind) for p in periods) for kind in TokenPrices.__dataclass_fields__))
        return self.prices(provider, model, datetime.now(UTC))

    def is_deepseek_peak(self, at: datetime) -> bool:
        if at.weekday() >= 5:
            return False
        return any(start <= at.hour < end for start, end in self.peak_hours_utc)

    @staticmethod
    def _lookup[T](table: dict[str, T], provider: str, model: str) -> T:
        try:
            return table[model]
        except KeyError:
            raise UnknownPriceError(
                f"no {provider} prices for model {model!r} (priced: {', '.join(sorted(table))})"
            ) from None


@cache
def price_table(path: Path = PRICING_FILE) -> PriceTable:
    import yaml  # PyYAML adds ~50 ms to every command: only costing an LLM call reads the table

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    claude = data["claude"]
    read_multiplier = Decimal(claude["cache_read_multiplier"])
    write_multiplier = Decimal(claude["cache_write_multiplier"])

    def claude_prices(entry: dict[str, str]) -> TokenPrices:
        base = Decimal(entry["input"])
        return TokenPrices(
            input=base,
            cache_read=Decimal(entry.get("cache_read", base * read_multiplier)),
            cache_write=base * write_multiplier,
            output=Decimal(entry["output"]),
        )

    def deepseek_prices(entry: dict[str, str]) -> TokenPrices:
        # DeepSeek caches automatically and does not bill cache writes separately.
        return TokenPrices(
            input=Decimal(entry["input"]),
            cache_read=Decimal(entry["cache_read"]),
            cache_write=Decimal(entry["input"]),
            output=Decimal(entry["output"]),
        )

    return PriceTable(
        as_of=str(data["as_of"]),
        peak_hours_utc=tuple((int(a), int(b)) for a, b in data["deepseek"]["peak_hours_utc"]),
        deepseek={
            model: {period: deepseek_prices(prices) for period, prices in periods.items()}
            for model, periods in data["deepseek"]["models"].items()
        },
        claude={model: claude_prices(prices) for model, prices in claude["models"].items()},
    )


def estimate_tokens(*texts: str) -> int:
    """A conservative input-token estimate that needs no tokenizer download."""
    size = sum(len(text.encode("utf-8")) for text in texts)
    return math.ceil(size / BYTES_PER_TOKEN_ESTIMATE) + MESSAGE_OVERHEAD_TOKENS * len(texts)


def call_cost(provider: str, model: str, usage: Usage, at: datetime) -> Decimal:
    return price_table().prices(provider, model, at).cost(usage)


def worst_case_cost(provider: str, model: str, input_tokens: int, max_output_tokens: int) -> Decimal:
    """The most a call can cost: every input token billed at the dearest input kind, every output token used."""
    prices = price_table().worst_case_prices(provider, model)
    dearest_input = max(prices.input, prices.cache_write)
    return (input_tokens * dearest_input + max_output_tokens * prices.output) / PER_TOKENS


# A typical answer is ~130 tokens (benchmarks/tokens_per_decision.py); the estimate allows for more.
EXPECTED_OUTPUT_TOKENS = 200


def estimate_run_cost(provider: str, model: str, sample_context: str, decisions: int) -> Decimal:
    """USD an AI run of `decisions` calls may cost, each like `sample_context`, before any cache hit.

    decisions x (the estimated input tokens of the system prompt, the context and the tool schema x the dearest
    input price + a typical answer's output tokens x the output price). Prices are per 1M tokens
    (`ai/data/pricing.yaml`), at the dearest time of day.
    """
    input_tokens = estimate_tokens(SYSTEM_PROMPT, sample_context, json.dumps(Signal.tool_schema()))
    prices = price_table().worst_case_prices(provider, model)
    per_decision = (input_tokens * prices.input + EXPECTED_OUTPUT_TOKENS * prices.output) / PER_TOKENS
    return per_decision * decisions
