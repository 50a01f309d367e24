"""A run's charts as data for the web page's chart loader (static/js/charts.js): equity against the baselines,
drawdown, and the price with every entry and exit.

The shape is the loader's protocol: {"panes": [{"title", "height" (px), "series": [{"type", "name", "color",
"data": [{"time": unix seconds, "value"} | {"time", "open", "high", "low", "close"}], "markers", "price_format"}]}]}.
Times are bar open times in UTC seconds; money is in the symbol's quote currency, drawdown in percent.
The standalone report draws the same three charts as SVG (`backtest.charts`).
"""

import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from backtest.charts import BASELINE_COLORS, OTHER_COLORS, STRATEGY_COLOR
from backtest.report_text import quote_currency
from backtest.results import BacktestReport, EquityCurve

ENTRY_COLOR, EXIT_COLOR = "#067647", "#b42318"
PRICE_COLUMNS = ("open", "high", "low", "close")
# Short marker labels: a dense chart on a phone has room for a word per trade.
EXIT_TEXT = {"signal": "Sell", "stop": "Stop", "take_profit": "Target", "end_of_data": "End"}


def chart_panes(report: BacktestReport, candles: pd.DataFrame | None = None) -> dict[str, Any]:
    """The three panes; `candles` (a UTC DatetimeIndex of open times with open/high/low/close columns) draws the
    price as candles over the run's window, else the curve's closes are drawn as a line. No panes for an empty run.
    """
    curve = report.curve
    if len(curve) == 0:
        return {"panes": []}
    quote = quote_currency(str(report.settings.get("symbol", "")))
    unit = f" ({quote})" if quote else ""
    equity = [_line(f"Strategy{unit}", STRATEGY_COLOR, curve)]
    for index, (name, baseline) in enumerate(report.baseline_curves.items()):
        color = BASELINE_COLORS.get(name.split(":")[0]) or OTHER_COLORS[index % len(OTHER_COLORS)]
        equity.append(_line(f"{baseline_label(name)}{unit}", color, baseline))
    peak = np.maximum.accumulate(curve.equity)
    drawdown = np.where(peak > 0, (curve.equity / np.where(peak > 0, peak, 1.0) - 1.0) * 100.0, 0.0)
    return {
        "panes": [
            {"title": f"Equity{unit}", "height": 260, "series": equity},
            {
                "title": "Drawdown (%)",
                "height": 150,
                "series": [
                    {
                        "type": "area",
                        "name": "Drawdown below the running peak (%)",
                        "color": EXIT_COLOR,
                        "data": _points(curve.times, drawdown),
                        "price_format": {"precision": 2, "min_move": 0.01},
                    }
                ],
            },
            {"title": f"Price and trades{unit}", "height": 300, "series": [_price(report, candles)]},
        ]
    }


def _price(report: BacktestReport, candles: pd.DataFrame | None) -> dict[str, Any]:
    curve = report.curve
    symbol = str(report.settings.get("symbol", "Price"))
    decimals = _price_decimals(float(np.min(curve.close)))
    series: dict[str, Any] = {
        "name": symbol,
        "price_format": {"precision": decimals, "min_move": 10.0**-decimals},
        "markers": _markers(report),
    }
    window = _window(candles, curve)
    if window is not None:
        seconds = _seconds(window.index.to_numpy(dtype="datetime64[ns]"))
        columns = [window[column].to_numpy(dtype=float) for column in PRICE_COLUMNS]
        series.update(
            type="candles",
            data=[
                {"time": int(t), **{key: _round(float(v[i])) for key, v in zip(PRICE_COLUMNS, columns, strict=True)}}
                for i, t in enumerate(seconds)
            ],
        )
    else:
        series.update(type="line", color="#475467", data=_points(curve.times, curve.close))
    return series


def _window(candles: pd.DataFrame | None, curve: EquityCurve) -> pd.DataFrame | None:
    if candles is None or candles.empty or not set(PRICE_COLUMNS) <= set(candles.columns):
        return None
    index = pd.DatetimeIndex(candles.index)
    index = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    first, last = pd.Timestamp(curve.times[0]), pd.Timestamp(curve.times[-1])
    window = candles[(index >= first) & (index <= last)]
    return None if window.empty else window


def _markers(report: BacktestReport) -> list[dict[str, Any]]:
    markers: list[dict[str, Any]] = []
    for trade in report.trades:
        markers.append(
            {
                "time": int(trade.entry_time.timestamp()),
                "position": "belowBar",
                "shape": "arrowUp",
                "color": ENTRY_COLOR,
                "text": "Buy",
            }
        )
        markers.append(
            {
                "time": int(trade.exit_time.timestamp()),
                "position": "aboveBar",
                "shape": "arrowDown",
                "color": EXIT_COLOR,
                "text": EXIT_TEXT.get(trade.exit_reason, "Sell"),
            }
        )
    return sorted(markers, key=lambda marker: marker["time"])


def _line(name: str, color: str, curve: EquityCurve) -> dict[str, Any]:
    return {"type": "line", "name": name, "color": color, "data": _points(curve.times, curve.equity)}


def _points(times: NDArray[np.datetime64], values: NDArray[np.float64]) -> list[dict[str, float | int]]:
    return [{"time": int(t), "value": _round(float(v))} for t, v in zip(_seconds(times), values, strict=True)]


def _seconds(times: NDArray[np.datetime64]) -> NDArray[np.int64]:
    return np.asarray(times, dtype="datetime64[s]").astype(np.int64)


def _round(value: float) -> float:
    # Ten significant digits keep cents on any price and shrink the JSON by about half.
    return float(f"{value:.10g}") if math.isfinite(value) else 0.0


def _price_decimals(lowest: float) -> int:
    """Decimals that show a price's movement: 2 from 100 up, 4 from 1, 8 below (most altcoins)."""
    return 2 if lowest >= 100 else 4 if lowest >= 1 else 8


def baseline_label(name: str) -> str:
    """A baseline's key for people: "buy_and_hold" -> "Buy and hold"; a source name ("rules:sma_cross") as is."""
    return name if ":" in name else name.replace("_", " ").capitalize()
