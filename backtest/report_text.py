"""How the backtest report page writes values for people: money with its currency to the cent (or to two
significant digits below a cent), prices, times as "YYYY-MM-DD HH:MM UTC", counts with thousands separators,
settings keys in words. trades.csv and summary.json do not use these: they stay machine-readable."""

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from backtest.results import decimal_text, iso_utc

ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
SETTING_LABELS = {
    "fee_rate": "Fee rate (fraction per fill)",
    "slippage_bps": "Slippage (basis points)",
    "every": "Decide every (bars)",
    "params": "Strategy parameters",
    "window_start": "First decision bar",
    "window_end": "Last bar",
    "bars": "Bars in the window",
    "risk_refusals": "Risk refusals",
    "rejected_orders": "Rejected orders",
}


def setting_label(key: str) -> str:
    """A settings key in words: "max_open_positions" -> "Max open positions"."""
    return SETTING_LABELS.get(key) or key.replace("_", " ").capitalize()


def metric_text(value: object, kind: str, currency: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if not isinstance(value, int | float):
        return str(value)
    match kind:
        case "pct":
            return f"{value:,.2f}%"
        case "ratio":
            return f"{value:,.2f}"
        case "int":
            return f"{int(value):,}"
        case "days":
            return f"{value:,.1f}"
        case "money":
            return money_text(value, currency)
        case "usd":
            return money_text(value, "USD")
    return f"{value:g}"


def setting_text(value: object) -> str:
    match value:
        case None:
            return "none"
        case bool():
            return "yes" if value else "no"
        case int():
            return f"{value:,}"
        case dict() if not value:
            return "none"
        case list() | tuple():
            return ", ".join(setting_text(item) for item in value) if value else "none"
        case str() if ISO_TIME.match(value):
            return stored_time_text(value)
    return plain_text(value)


def plain_text(value: object) -> str:
    match value:
        case str():
            return value
        case Decimal():
            return decimal_text(value)
        case datetime() | np.datetime64():
            return iso_utc(value)
    return json.dumps(value, sort_keys=True, default=str)


def money_setting_text(value: object, currency: str) -> str:
    try:
        return money_text(Decimal(str(value)), currency)
    except ArithmeticError:
        return setting_text(value)


def quote_currency(symbol: str) -> str:
    """The currency a symbol is priced in: "BTC/USDT" -> "USDT" ("" when the symbol does not say)."""
    _, slash, quote = symbol.partition("/")
    return quote.split(":")[0] if slash else ""


def base_currency(symbol: str) -> str:
    base, slash, _ = symbol.partition("/")
    return base if slash else ""


def with_unit(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def money_text(value: float | int | Decimal, currency: str = "") -> str:
    """Money to the cent with thousands separators ("1,234.50 USDT"); a non-zero amount under a cent to two
    significant digits, so it does not read as zero ("0.0000055 USDT", "-0.0000001 USDT")."""
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if number == 0:
        number = Decimal(0)  # no "-0.00"
    if number == 0 or abs(number) >= Decimal("0.01"):
        text = f"{number:,.2f}"
    else:
        decimals = 1 - number.adjusted()
        text = f"{number:.{decimals}f}".rstrip("0")
    return f"{text} {currency}" if currency else text


def price_text(value: Decimal) -> str:
    """A price to the cent with thousands separators; under 1 to four significant digits (0.00001234)."""
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.{3 - value.adjusted()}f}"


def time_text_utc(moment: datetime | np.datetime64) -> str:
    """A time as people read it: "2021-01-01 01:00 UTC"."""
    return iso_utc(moment)[:16].replace("T", " ") + " UTC"


def stored_time_text(value: object) -> str:
    """A stored time (a datetime, or ISO text with an offset or "Z") as time_text_utc; anything else as it is."""
    if isinstance(value, datetime | np.datetime64):
        return time_text_utc(value)
    if isinstance(value, str) and ISO_TIME.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return time_text_utc(moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC))
    return plain_text(value)


def count_text(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | np.integer) else plain_text(value)


def time_text(moment: np.datetime64) -> str:
    """A bar time as "YYYY-MM-DD HH:MM" (UTC)."""
    return iso_utc(moment).removesuffix("Z").replace("T", " ")[:16]
