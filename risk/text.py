"""Numbers as people read them in reasons: grouped thousands, sensible decimals, never a misleading tie."""

from datetime import datetime
from decimal import Decimal
from functools import lru_cache

MAX_PLACES = 12


@lru_cache(maxsize=4096)  # steps and limits repeat in every decision; a backtest makes thousands
def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _render(values: tuple[Decimal, ...], places: list[int]) -> list[str]:
    if len(values) == 1:  # nothing to tell apart
        return [f"{values[0]:,.{min(places[0], MAX_PLACES)}f}"]
    # Add decimals until unequal values read differently: "5.00 < 5.00" would explain nothing.
    extra = 0
    while True:
        texts = [f"{value:,.{min(count + extra, MAX_PLACES)}f}" for value, count in zip(values, places, strict=True)]
        if len(set(texts)) == len(set(values)) or min(places) + extra >= MAX_PLACES:
            return texts
        extra += 1


def money(*values: Decimal) -> list[str]:
    """Amounts in a quote currency: two decimals, more for small amounts (three significant digits)."""
    return _render(values, [max(2, 2 - value.adjusted()) if value else 2 for value in values])


def on_grid(step: Decimal, *values: Decimal) -> list[str]:
    """Prices or quantities with the decimals of their exchange step; off-grid values show up to three more."""
    grid = _places(step)
    return _render(values, [max(grid, min(_places(value), grid + 3)) for value in values])


def ratio(*values: Decimal) -> list[str]:
    return _render(values, [2] * len(values))


def percent(*values: Decimal) -> list[str]:
    return [f"{text}%" for text in _render(values, [min(_places(value), 2) for value in values])]


def utc_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def exact(**values: Decimal | int | str) -> dict[str, str]:
    """The machine-readable side of a reason: every number as its exact string."""
    return {name: str(value) for name, value in values.items()}
