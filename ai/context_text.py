"""How numbers and times are written in a market context: fixed decimals, signed percentages, `key=value` pairs,
prices to a number of significant digits ("na" for what is not a number)."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_SECOND = 1_000_000_000
_UNIT_SECONDS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def price_decimals(reference: float, significant: int = 6, minimum: int = 2) -> int:
    """Decimals that give about `significant` digits for prices near `reference`, never fewer than `minimum`."""
    if not math.isfinite(reference) or reference <= 0:
        return max(minimum, 2)
    digits = math.floor(math.log10(reference)) + 1
    return min(10, max(minimum, significant - digits))


class Formatter:
    """Fixed-decimal numbers; prices are multiplied by `scale` (1, or the blind rebasing) first."""

    def __init__(self, scale: float, price_decimals: int) -> None:
        self.scale = scale
        self.price_decimals = price_decimals

    def price(self, value: float) -> str:
        return fixed(value * self.scale, self.price_decimals)

    def price_decimal(self, value: Decimal, factor: Decimal) -> str:
        return fixed_decimal(value / factor, self.price_decimals)


def fixed(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "na"
    # Adding 0.0 turns a rounded -0.0 into 0.0, so tiny negatives never print as "-0.00".
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def signed_pct(value: float, decimals: int = 2) -> str:
    if not math.isfinite(value):
        return "na"
    return f"{round(value, decimals) + 0.0:+.{decimals}f}%"


def pct(value: float) -> str:
    return "na" if not math.isfinite(value) else fixed(value, 2) + "%"


def fixed_decimal(value: Decimal, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def quantity_text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def pct_of(value: float, reference: float) -> str:
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return "na"
    return signed_pct(100 * (value / reference - 1))


def timeframe_label(bar_ns: int) -> str:
    seconds = bar_ns // _NS_PER_SECOND
    return next(f"{seconds // size}{unit}" for unit, size in _UNIT_SECONDS if seconds % size == 0)


def utc_moment(epoch_ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=epoch_ns // 1000)


def iso_minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def pairs(*items: tuple[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in items)
