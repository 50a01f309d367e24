"""Jinja filters that write values the way the pages show them: money with its currency at the market's or a
sensible precision, USD costs to a fraction of a cent, times as "YYYY-MM-DD HH:MM UTC", labels in words.

Plain functions (no Flask) registered on the app by `register`, so templates and tests share them.
"""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from flask import Flask

# What a missing value shows as (an en dash).
NONE = "\u2013"

_LABELS = {"pnl": "PnL", "usd": "USD", "id": "ID", "ai": "AI", "llm": "LLM", "api": "API", "rsi": "RSI"}


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def money(value: object, currency: str = "", decimals: int | None = None) -> str:
    """`1,234.56 USDT`. Two decimals by default; below one unit, up to four significant digits (0.001234 BTC)
    so a small amount does not read 0.00; `decimals` (the market's precision) overrides both. None -> an en dash."""
    number = _decimal(value)
    if number is None:
        return NONE
    if decimals is None:
        decimals = 2
        magnitude = abs(number)
        if 0 < magnitude < 1:
            decimals = max(2, min(8, -magnitude.adjusted() + 3))
    text = f"{number:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    return f"{text} {currency}".strip()


def signed_money(value: object, currency: str = "", decimals: int | None = None) -> str:
    """Like `money` with an explicit sign for gains and losses: `+1.20 USDT`, `-0.35 USDT`, `0.00 USDT`."""
    text = money(value, currency, decimals)
    number = _decimal(value)
    return text if number is None or text[0] in "-0" or number <= 0 else f"+{text}"


def usd(value: object) -> str:
    """An AI cost in USD: `$0.0123`; four decimals below a dollar (a call costs fractions of a cent), two above."""
    number = _decimal(value)
    if number is None:
        return NONE
    return f"${number:,.2f}" if abs(number) >= 1 else f"${number:.4f}"


def percent(value: object, decimals: int = 1) -> str:
    """`12.3%` from a value already in percent; None -> an en dash."""
    number = _decimal(value)
    return NONE if number is None else f"{number:,.{decimals}f}%"


def utc(moment: datetime | None, seconds: bool = False) -> str:
    """`2024-01-12 16:00 UTC`; a naive time is taken as UTC (SQLite returns them naive)."""
    if moment is None:
        return NONE
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def label(name: object) -> str:
    """`max_open_positions` -> `Max open positions`; known abbreviations in capitals (`ai_cost_usd` -> `AI cost
    USD`)."""
    words = [_LABELS.get(word.lower(), word) for word in str(name).replace("-", "_").split("_") if word]
    if not words:
        return ""
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def register(app: Flask) -> None:
    for name, function in {
        "money": money,
        "signed_money": signed_money,
        "usd": usd,
        "percent": percent,
        "utc": utc,
        "label": label,
    }.items():
        app.jinja_env.filters[name] = function
