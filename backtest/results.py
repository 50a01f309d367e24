"""The values a backtest produces, and their JSON shape (the CLI's output and summary.json).

Times are UTC throughout: `datetime`s must be tz-aware, numpy times are datetime64[ns] holding UTC. In JSON every time
is ISO-8601 ending in "Z", every Decimal is a string (so no precision is lost), and every non-finite float is null.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

EXIT_REASONS = frozenset({"signal", "stop", "take_profit", "end_of_data"})


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed round trip; pnl is net of both the entry and the exit fee, all money in the quote currency."""

    entry_time: datetime
    exit_time: datetime
    entry_price: Decimal
    exit_price: Decimal
    quantity: Decimal
    pnl: Decimal
    fees: Decimal
    exit_reason: str

    def __post_init__(self) -> None:
        for name in ("entry_time", "exit_time"):
            if getattr(self, name).utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware (UTC)")
        if self.exit_time < self.entry_time:
            raise ValueError("exit_time is before entry_time")
        # average_trade_pct divides by the entry notional, so it has to be positive.
        if not (self.entry_price > 0 and self.quantity > 0):
            raise ValueError("entry_price and quantity must be positive")
        if self.exit_reason not in EXIT_REASONS:
            raise ValueError(f"exit_reason {self.exit_reason!r} is not one of {sorted(EXIT_REASONS)}")


@dataclass(frozen=True, slots=True, eq=False)
class EquityCurve:
    """Per-bar account state at each bar's close: one entry per bar in every array."""

    times: NDArray[np.datetime64]
    equity: NDArray[np.float64]
    close: NDArray[np.float64]
    in_position: NDArray[np.bool_]

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", np.asarray(self.times, dtype="datetime64[ns]"))
        object.__setattr__(self, "equity", np.asarray(self.equity, dtype=np.float64))
        object.__setattr__(self, "close", np.asarray(self.close, dtype=np.float64))
        object.__setattr__(self, "in_position", np.asarray(self.in_position, dtype=bool))
        lengths = {len(self.times), len(self.equity), len(self.close), len(self.in_position)}
        if len(lengths) != 1:
            raise ValueError("times, equity, close and in_position must have one entry per bar")
        if not (np.isfinite(self.equity).all() and np.isfinite(self.close).all()):
            raise ValueError("equity and close must be finite")

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, slots=True)
class AiUsage:
    """What the signal source did over the run; estimated_cost_usd is None when no estimate was made."""

    decisions: int
    cache_hits: int
    cache_misses: int
    cost_usd: Decimal
    estimated_cost_usd: Decimal | None


@dataclass(frozen=True, slots=True, eq=False)
class BacktestReport:
    """Everything the outputs show; metrics dicts come from backtest.metrics.compute_metrics."""

    settings: dict[str, Any]
    metrics: dict[str, float | int | None]
    baselines: dict[str, dict[str, float | int | None]]
    ai: AiUsage
    trades: list[TradeRecord]
    gaps: list[dict[str, Any]]
    warnings: list[str]
    curve: EquityCurve
    baseline_curves: dict[str, EquityCurve]


def iso_utc(moment: datetime | np.datetime64) -> str:
    """ISO-8601 in UTC with a "Z" suffix, the one time format of every output."""
    when: datetime
    if isinstance(moment, np.datetime64):
        # numpy times are naive but hold UTC by contract; going through datetime keeps one formatter for both kinds.
        when = moment.astype("datetime64[us]").astype(datetime).replace(tzinfo=UTC)
    else:
        when = moment
    if when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: times must be UTC-aware")
    return when.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def decimal_text(value: Decimal) -> str:
    """Fixed-point text: "0.0000001" rather than "1E-7", which people and spreadsheets misread."""
    return format(value, "f")


def trade_json(trade: TradeRecord) -> dict[str, str]:
    """One trade as the JSON output and the CSV both show it."""
    return {
        "entry_time": iso_utc(trade.entry_time),
        "exit_time": iso_utc(trade.exit_time),
        "entry_price": decimal_text(trade.entry_price),
        "exit_price": decimal_text(trade.exit_price),
        "qty": decimal_text(trade.quantity),
        "pnl": decimal_text(trade.pnl),
        "fees": decimal_text(trade.fees),
        "exit_reason": trade.exit_reason,
    }


def json_safe(value: Any) -> Any:
    """A copy that json.dumps(allow_nan=False) accepts: NaN/inf -> None, Decimal -> str, times -> ISO strings."""
    match value:
        case bool() | None | str():
            return value
        case Decimal():
            return decimal_text(value) if value.is_finite() else None
        case datetime() | np.datetime64():
            return iso_utc(value)
        case float() | np.floating():
            number = float(value)
            return number if math.isfinite(number) else None
        case int() | np.integer():
            return int(value)
        case np.bool_():
            return bool(value)
        case dict():
            return {str(key): json_safe(item) for key, item in value.items()}
        case list() | tuple() | np.ndarray():
            return [json_safe(item) for item in value]
    return value


def report_json(report: BacktestReport) -> dict[str, Any]:
    """The CLI's JSON shape: settings, metrics, baselines, ai, trades, gaps, warnings."""
    ai = report.ai
    return {
        "settings": json_safe(report.settings),
        "metrics": json_safe(report.metrics),
        "baselines": json_safe(report.baselines),
        "ai": {
            "decisions": ai.decisions,
            "cache_hits": ai.cache_hits,
            "cache_misses": ai.cache_misses,
            "cost_usd": decimal_text(ai.cost_usd),
            "estimated_cost_usd": None if ai.estimated_cost_usd is None else decimal_text(ai.estimated_cost_usd),
        },
        "trades": [trade_json(trade) for trade in report.trades],
        "gaps": json_safe(report.gaps),
        "warnings": list(report.warnings),
    }
