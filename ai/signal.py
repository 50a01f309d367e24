"""The Signal: what every signal source proposes. Its JSON Schema is the tool / structured-output schema.

Semantic checks live here too, because "well-formed JSON" is not the same as "a signal we may act on".
"""

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ai.actions import Action

SCHEMA_VERSION = "1"
REASONING_MAX_CHARS = 500
KEY_FACTOR_MAX_CHARS = 80
KEY_FACTORS_MAX = 5
HORIZON_MAX_BARS = 500
# How far from the last close a proposed price may lie before the answer is treated as nonsense.
DEFAULT_PRICE_BAND = Decimal("0.5")

# Prices are Decimal in the domain; the model sees plain JSON numbers.
Price = Annotated[Decimal, Field(gt=0), WithJsonSchema({"type": "number"})]
OptionalPrice = Annotated[Decimal | None, Field(gt=0), WithJsonSchema({"type": ["number", "null"]})]


class Signal(BaseModel):
    """One trading proposal for the market described."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="trading_signal")

    action: Annotated[Action, WithJsonSchema({"type": "string", "enum": [a.value for a in Action]})] = Field(
        description="BUY opens or adds to a long, SELL closes it, HOLD does nothing."
    )
    confidence: int = Field(ge=0, le=100, description="0-100, calibrated.")
    entry_price: OptionalPrice = Field(description="Near the last close; null for HOLD.")
    stop_loss: OptionalPrice = Field(description="BUY: below entry; else null.")
    take_profit: OptionalPrice = Field(description="BUY: above entry or null; else null.")
    horizon_bars: int = Field(ge=1, le=HORIZON_MAX_BARS, description="Expected holding time in bars.")
    reasoning: str = Field(max_length=REASONING_MAX_CHARS, description="At most three short sentences.")
    key_factors: list[Annotated[str, Field(max_length=KEY_FACTOR_MAX_CHARS)]] = Field(
        max_length=KEY_FACTORS_MAX, description="Main indicators, most important first."
    )

    @classmethod
    def tool_schema(cls) -> dict[str, Any]:
        """The closed JSON Schema sent to providers (no titles, no $defs: strict modes want it flat).

        Every signal request sends it, so it is generated once; each caller gets its own copy to change freely.
        """
        schema: dict[str, Any] = json.loads(_tool_schema_text())
        return schema

    def scaled(self, factor: Decimal) -> "Signal":
        """The same signal with every price multiplied by `factor` (blind-mode prices mapped back)."""
        return self.model_copy(
            update={
                name: (getattr(self, name) * factor if getattr(self, name) is not None else None)
                for name in ("entry_price", "stop_loss", "take_profit")
            }
        )


@cache
def _tool_schema_text() -> str:
    schema = Signal.model_json_schema()
    schema.pop("title", None)
    _strip_titles(schema)
    schema["additionalProperties"] = False
    schema["required"] = list(schema["properties"])
    return json.dumps(schema)


def _strip_titles(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("title", None)
        for value in node.values():
            _strip_titles(value)
    elif isinstance(node, list):
        for value in node:
            _strip_titles(value)


@dataclass(frozen=True)
class Violation:
    """A coded reason why a parsed signal cannot be acted on."""

    code: str
    message: str
    values: dict[str, str] = field(default_factory=dict)


def check_signal(
    signal: Signal,
    last_close: Decimal,
    allowed_actions: Collection[Action],
    price_band: Decimal = DEFAULT_PRICE_BAND,
) -> list[Violation]:
    """Semantic validation after parsing; an empty list means the signal may go on to the risk manager."""
    violations: list[Violation] = []
    if signal.action not in allowed_actions:
        allowed = ", ".join(sorted(a.value for a in allowed_actions))
        violations.append(
            Violation("ACTION_NOT_ALLOWED", f"{signal.action.value} is not allowed now (allowed: {allowed})")
        )
    if signal.action is Action.HOLD:
        return violations
    for name in ("entry_price", "stop_loss", "take_profit"):
        price = getattr(signal, name)
        if price is not None and abs(price - last_close) > price_band * last_close:
            violations.append(
                Violation(
                    "PRICE_OUT_OF_BAND",
                    f"{name} {price} is more than {price_band:%} away from the last close {last_close}",
                    {"field": name, "price": str(price), "last_close": str(last_close)},
                )
            )
    if signal.action is Action.BUY:
        violations += _check_long_levels(signal)
    return violations


def _check_long_levels(signal: Signal) -> list[Violation]:
    entry, stop, target = signal.entry_price, signal.stop_loss, signal.take_profit
    if entry is None:
        return [Violation("MISSING_ENTRY", "a BUY needs an entry price")]
    if stop is None:
        return [Violation("MISSING_STOP_LOSS", "a BUY needs a stop loss")]
    violations = []
    if not stop < entry:
        violations.append(
            Violation(
                "STOP_NOT_BELOW_ENTRY",
                f"stop loss {stop} must be below entry {entry} for a BUY",
                {"stop_loss": str(stop), "entry_price": str(entry)},
            )
        )
    if target is not None and not target > entry:
        violations.append(
            Violation(
                "TAKE_PROFIT_NOT_ABOVE_ENTRY",
                f"take profit {target} must be above entry {entry} for a BUY",
                {"take_profit": str(target), "entry_price": str(entry)},
            )
        )
    return violations
