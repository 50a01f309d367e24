"""The risk settings: documented defaults, and validation of the overrides an account stores as JSON."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any


class RiskSettingError(ValueError):
    """A risk setting that cannot be used. `setting` is the one that failed its check; `related` names the settings
    its allowed range depends on, so a caller can tell a user which of their changes conflicts with which."""

    def __init__(self, setting: str, message: str, related: tuple[str, ...] = (), rule: str = "") -> None:
        super().__init__(message)
        self.setting, self.related, self.rule = setting, related, rule


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Risk settings; percentages are in percent (1 means 1%). Defaults suit a ~100 USDT spot account; see MEANINGS."""

    risk_per_trade_pct: Decimal = Decimal(1)
    max_position_pct: Decimal = Decimal(50)
    max_open_positions: int = 2
    max_total_exposure_pct: Decimal = Decimal(80)
    daily_loss_limit_pct: Decimal = Decimal(3)
    max_drawdown_pct: Decimal = Decimal(15)
    min_confidence: int = 55
    min_reward_risk: Decimal = Decimal("1.5")
    default_stop_pct: Decimal = Decimal(2)
    min_stop_pct: Decimal = Decimal("0.3")
    max_stop_pct: Decimal = Decimal(10)
    min_raise_tolerance_pct: Decimal = Decimal(30)
    cooldown_minutes: int = 60
    symbol_allowlist: tuple[str, ...] = ()
    trailing_stop_pct: Decimal | None = None

    def __post_init__(self) -> None:
        for spec in fields(self):
            _CHECK_TYPE[spec.type](spec.name, getattr(self, spec.name))
        _within("risk_per_trade_pct", self.risk_per_trade_pct, 0, 10, low_open=True)
        _within("max_position_pct", self.max_position_pct, 0, 100, low_open=True)
        _within("max_open_positions", self.max_open_positions, 1, 100)
        _within("max_total_exposure_pct", self.max_total_exposure_pct, 0, 100, low_open=True)
        _within("daily_loss_limit_pct", self.daily_loss_limit_pct, 0, 100, low_open=True)
        _within("max_drawdown_pct", self.max_drawdown_pct, 0, 100, low_open=True, high_open=True)
        _within("min_confidence", self.min_confidence, 0, 100)
        _within("min_reward_risk", self.min_reward_risk, 0, 100)
        # A stop at or beyond 100% would sit at or below zero and never protect anything.
        _within("min_stop_pct", self.min_stop_pct, 0, 100, high_open=True)
        _within(
            "max_stop_pct",
            self.max_stop_pct,
            self.min_stop_pct,
            100,
            low_open=True,
            high_open=True,
            related=("min_stop_pct",),
            rule="min_stop_pct < max_stop_pct < 100",
        )
        _within(
            "default_stop_pct",
            self.default_stop_pct,
            self.min_stop_pct,
            self.max_stop_pct,
            related=("min_stop_pct", "max_stop_pct"),
            rule="min_stop_pct <= default_stop_pct <= max_stop_pct",
        )
        _within("min_raise_tolerance_pct", self.min_raise_tolerance_pct, 0, 100)
        _within("cooldown_minutes", self.cooldown_minutes, 0, 7 * 24 * 60)
        if self.trailing_stop_pct is not None:
            _within("trailing_stop_pct", self.trailing_stop_pct, 0, 100, low_open=True, high_open=True)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, object]) -> "RiskConfig":
        """Defaults with an account's overrides applied; strings and JSON numbers are accepted."""
        names = [spec.name for spec in fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise RiskSettingError(
                unknown[0], f"unknown risk setting(s) {', '.join(unknown)}; allowed: {', '.join(names)}"
            )
        types = {spec.name: spec.type for spec in fields(cls)}
        return cls(**{name: _PARSE[types[name]](name, value) for name, value in overrides.items()})


# One line per setting, for the README table and settings forms.
MEANINGS: Mapping[str, str] = {
    "risk_per_trade_pct": "% of equity lost if the stop is hit, per trade",
    "max_position_pct": "largest single position, % of equity (room to reach a 5 USDT minimum)",
    "max_open_positions": "open positions at once, across symbols",
    "max_total_exposure_pct": "all open positions together (at cost), % of equity",
    "daily_loss_limit_pct": "realized loss today, % of the day's starting equity, that switches to REDUCING",
    "max_drawdown_pct": "kill switch: equity this far below its peak switches to HALTED",
    "min_confidence": "signals below this confidence (0-100) are not acted on",
    "min_reward_risk": "(take profit - entry) / (entry - stop) at least this, when a take profit is given",
    "default_stop_pct": "stop distance below entry when the signal gives none",
    "min_stop_pct": "stops closer than this are refused (noise, fees)",
    "max_stop_pct": "stops further than this are refused",
    "min_raise_tolerance_pct": "extra risk, % of the target, accepted to lift a too-small order to the exchange min",
    "cooldown_minutes": "no new position for this long after a losing trade (0 = off)",
    "symbol_allowlist": "symbols that may be opened, e.g. BTC/USDT (empty = all)",
    "trailing_stop_pct": "trailing stop distance below the highest price (none = off)",
}


def _problem(name: str, what: str, value: object, related: tuple[str, ...] = (), rule: str = "") -> RiskSettingError:
    return RiskSettingError(name, f"risk setting {name}: {what} (got {_shown(value)})", related, rule)


def _shown(value: object) -> str:
    """As a user writes it: 50, 0.3, "abc", BTC/USDT (never Decimal('50'))."""
    if isinstance(value, Decimal) and value.is_finite():
        return format(value.normalize(), "f")
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def _within(
    name: str,
    value: Decimal | int,
    low: Decimal | int,
    high: Decimal | int,
    *,
    low_open: bool = False,
    high_open: bool = False,
    related: tuple[str, ...] = (),
    rule: str = "",
) -> None:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{_shown(low)}, {_shown(high)}{')' if high_open else ']'}"
        raise _problem(name, f"must be in {interval}", value, related, rule)


def _check_decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _problem(name, "must be a finite Decimal", value)


def _check_optional_decimal(name: str, value: object) -> None:
    if value is not None:
        _check_decimal(name, value)


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _problem(name, "must be a whole number", value)


def _check_symbols(name: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(symbol, str) and symbol for symbol in value):
        raise _problem(name, "must be a tuple of symbols", value)


def _parse_decimal(name: str, value: object) -> Decimal:
    # bool is an int to Python, but `true` for a percentage is a mistake, not 1%.
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _problem(name, "must be a number", value)
    try:
        number = Decimal(str(value).strip())  # str() first: a JSON float's binary noise must not leak in
    except InvalidOperation:
        raise _problem(name, "must be a number", value) from None
    if not number.is_finite():
        raise _problem(name, "must be a finite number", value)
    return number


def _parse_optional_decimal(name: str, value: object) -> Decimal | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    return _parse_decimal(name, value)


def _parse_int(name: str, value: object) -> int:
    number = _parse_decimal(name, value)
    if number != number.to_integral_value():
        raise _problem(name, "must be a whole number", value)
    return int(number)


def _parse_symbols(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(symbol, str) for symbol in value):
        raise _problem(name, "must be a list of symbols or a comma-separated string", value)
    return tuple(symbol.strip().upper() for symbol in value if symbol.strip())


_CHECK_TYPE: dict[object, Callable[[str, object], None]] = {
    Decimal: _check_decimal,
    Decimal | None: _check_optional_decimal,
    int: _check_int,
    tuple[str, ...]: _check_symbols,
}
# Each parser returns the type its key names (Decimal, Decimal | None, int, tuple[str, ...]); a dict cannot say that
# per key, so the value is Any, which is what lets `from_overrides` pass the parsed values on to the dataclass.
_PARSE: dict[object, Callable[[str, object], Any]] = {
    Decimal: _parse_decimal,
    Decimal | None: _parse_optional_decimal,
    int: _parse_int,
    tuple[str, ...]: _parse_symbols,
}
