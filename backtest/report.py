"""Backtest outputs: trades.csv, summary.json and one self-contained HTML page.

The page works offline and from an e-mail attachment: inline CSS and inline SVG only, no script, no external
reference of any kind. Every piece of text that comes from data is escaped.
"""

import csv
import html
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backtest.results import (
    BacktestReport,
    TradeRecord,
    decimal_text,
    iso_utc,
    report_json,
    trade_json,
)

MAX_POINTS = 2_000
MAX_TABLE_ROWS = 200
CSV_COLUMNS = ("entry_time", "exit_time", "entry_price", "exit_price", "qty", "pnl", "fees", "exit_reason")

STRATEGY_COLOR = "#2563eb"
BASELINE_COLORS = {"buy_and_hold": "#6b7280", "rules": "#d97706"}
OTHER_COLORS = ("#7c3aed", "#0d9488", "#db2777", "#65a30d")
ENTRY_COLOR = "#16a34a"
EXIT_COLOR = "#dc2626"

# (key, label, kind); kind picks the number format. Keys a newer engine adds still show, after these, unformatted.
METRIC_ROWS = (
    ("total_return_pct", "Total return", "pct"),
    ("net_return_after_ai_pct", "Return after AI cost", "pct"),
    ("cagr_pct", "CAGR", "pct"),
    ("annual_volatility_pct", "Annual volatility", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown_pct", "Max drawdown", "pct"),
    ("max_drawdown_duration_bars", "Longest drawdown (bars)", "int"),
    ("max_drawdown_duration_days", "Longest drawdown (days)", "days"),
    ("calmar", "Calmar", "ratio"),
    ("trades", "Trades", "int"),
    ("win_rate_pct", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy per trade", "money"),
    ("average_trade_pct", "Average trade", "pct"),
    ("exposure_pct", "Exposure", "pct"),
    ("fees_paid", "Fees paid", "money"),
    ("ai_cost_usd", "AI cost (USD)", "money"),
    ("final_equity", "Final equity", "money"),
)


def write_trades_csv(trades: Iterable[TradeRecord], path: Path | str) -> None:
    """One row per trade under a header; times ISO-8601 UTC, numbers as exact decimal text."""
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(trade_json(trade) for trade in trades)


def write_summary_json(report: BacktestReport, path: Path | str) -> None:
    """report_json as strict JSON (allow_nan=False, so a stray NaN fails here rather than in a reader)."""
    text = json.dumps(report_json(report), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_html(report: BacktestReport, path: Path | str) -> None:
    Path(path).write_text(render_html(report), encoding="utf-8")


def downsample[T: np.generic](
    times: NDArray[T], values: NDArray[np.float64], max_points: int = MAX_POINTS
) -> tuple[NDArray[T], NDArray[np.float64]]:
    """At most max_points points in time order, keeping each bucket's min and max and both ends.

    Plain striding would step over the deepest trough of a drawdown; min/max per bucket keeps every extreme visible.
    """
    count = len(values)
    if count <= max_points:
        return times, values
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    buckets = (max_points - 2) // 2
    edges = np.linspace(0, count, buckets + 1).astype(np.int64)
    keep = [0, count - 1]
    for start, stop in itertools.pairwise(edges.tolist()):
        chunk = values[start:stop]
        keep.extend((start + int(np.argmin(chunk)), start + int(np.argmax(chunk))))
    indices = np.unique(keep)
    return times[indices], values[indices]


def render_html(report: BacktestReport) -> str:
    """The whole report page as one string."""
    settings = report.settings
    symbol = str(settings.get("symbol", "?"))
    timeframe = str(settings.get("timeframe", "?"))
    title = f"Backtest {symbol} {timeframe}"
    sections = [
        _header(report, title),
        _warnings(report),
        _metrics_table(report),
        _ai_line(report),
        _charts(report),
        _trades_table(report.trades),
        _gaps_table(report.gaps),
        _settings_table(settings),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n</body>\n</html>\n"
    )


_CSS = """
body { margin: 0; background: #f6f7f9; color: #1f2937;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #4b5563; margin: 2px 0; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 16px; }
.warning { background: #fff7ed; border: 1px solid #fdba74; border-left: 6px solid #ea580c; border-radius: 8px;
  padding: 10px 14px; margin: 16px 0; color: #7c2d12; }
.warning strong { display: block; margin-bottom: 4px; }
.warning ul { margin: 0; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid #eef0f3; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f4f6; font-weight: 600; }
td.pos { color: #15803d; } td.neg { color: #b91c1c; }
.note { color: #6b7280; font-size: 13px; margin: 6px 0; }
svg { display: block; width: 100%; height: auto; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; }
svg text { font: 11px system-ui, sans-serif; fill: #4b5563; }
.scroll { overflow-x: auto; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header(report: BacktestReport, title: str) -> str:
    times = report.curve.times
    source = report.settings.get("signal_source", "?")
    window = f"{_time_text(times[0])} → {_time_text(times[-1])} UTC" if len(times) else "empty"
    return (
        f"<header>\n<h1>{_esc(title)}</h1>\n"
        f'<p class="sub">Window: {_esc(window)} ({len(times):,} bars)</p>\n'
        f'<p class="sub">Signal source: {_esc(source)}</p>\n</header>'
    )


def _warnings(report: BacktestReport) -> str:
    items = list(report.warnings)
    if report.gaps:
        longest = max(report.gaps, key=lambda gap: int(gap["missing_bars"]))
        missing = sum(int(gap["missing_bars"]) for gap in report.gaps)
        first, last = (str(longest[key]).replace("T", " ")[:16] for key in ("first_missing", "last_missing"))
        items.append(
            f"{len(report.gaps):,} gap(s) in the data, {missing:,} missing bar(s) in all; the longest: {first} -> "
            f"{last} UTC, {int(longest['missing_bars']):,} bar(s). Nothing is traded or filled in across a gap."
        )
    if not report.baselines:
        items.append("No baseline was run on this window: the result cannot be compared with buy-and-hold.")
    if not items:
        return ""
    lines = "".join(f"<li>{_esc(item)}</li>" for item in items)
    return f'<section class="warning" role="alert"><strong>Read this first</strong><ul>{lines}</ul></section>'


def _metrics_table(report: BacktestReport) -> str:
    columns = [("Strategy", report.metrics), *report.baselines.items()]
    known = {key for key, _, _ in METRIC_ROWS}
    extra = sorted({key for _, metrics in columns for key in metrics} - known)
    rows = [*METRIC_ROWS, *((key, key, "raw") for key in extra)]
    head = "".join(f"<th>{_esc(name)}</th>" for name, _ in columns)
    body = "\n".join(
        f"<tr><td>{_esc(label)}</td>"
        + "".join(f"<td>{_esc(_format_metric(metrics.get(key), kind))}</td>" for _, metrics in columns)
        + "</tr>"
        for key, label, kind in rows
    )
    return (
        '<section>\n<h2>Metrics</h2>\n<div class="scroll">'
        f"<table><thead><tr><th>Metric</th>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>\n"
        '<p class="note">Returns are net of fees; "Return after AI cost" also subtracts what the signal source'
        " cost.</p>"
        "\n</section>"
    )


def _format_metric(value: object, kind: str) -> str:
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
            return f"{value:,.2f}"
    return f"{value:g}"


def _ai_line(report: BacktestReport) -> str:
    ai = report.ai
    parts = [
        f"{ai.decisions:,} decisions",
        f"{ai.cache_hits:,} cache hits",
        f"{ai.cache_misses:,} cache misses",
        f"cost ${decimal_text(ai.cost_usd)}",
    ]
    if ai.estimated_cost_usd is not None:
        parts.append(f"estimated ${decimal_text(ai.estimated_cost_usd)}")
    return f'<p class="card"><strong>AI usage:</strong> {_esc(" · ".join(parts))}</p>'


def _trades_table(trades: Sequence[TradeRecord]) -> str:
    if not trades:
        return '<section>\n<h2>Trades</h2>\n<p class="note">No trades.</p>\n</section>'
    head = "".join(f"<th>{_esc(name)}</th>" for name in ("#", *CSV_COLUMNS))
    rows = []
    for number, trade in enumerate(trades[:MAX_TABLE_ROWS], start=1):
        row = trade_json(trade)
        sign = "pos" if trade.pnl > 0 else "neg" if trade.pnl < 0 else ""
        cells = "".join(
            f'<td class="{sign}">{_esc(row[column])}</td>' if column == "pnl" else f"<td>{_esc(row[column])}</td>"
            for column in CSV_COLUMNS
        )
        rows.append(f"<tr><td>{number}</td>{cells}</tr>")
    note = (
        f'<p class="note">Showing the first {MAX_TABLE_ROWS:,} of {len(trades):,} trades.</p>'
        if len(trades) > MAX_TABLE_ROWS
        else ""
    )
    return (
        f'<section>\n<h2>Trades ({len(trades):,})</h2>\n{note}<div class="scroll">'
        f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>\n</section>"
    )


def _gaps_table(gaps: Sequence[dict[str, Any]]) -> str:
    if not gaps:
        return ""
    rows = "\n".join(
        f"<tr><td>{_esc(_plain_text(gap.get('first_missing')))}</td><td>{_esc(_plain_text(gap.get('last_missing')))}"
        f"</td><td>{_esc(_plain_text(gap.get('missing_bars')))}</td></tr>"
        for gap in gaps[:MAX_TABLE_ROWS]
    )
    note = (
        f'<p class="note">Showing {MAX_TABLE_ROWS:,} of {len(gaps):,} gaps.</p>' if len(gaps) > MAX_TABLE_ROWS else ""
    )
    return (
        f"<section>\n<h2>Data gaps ({len(gaps):,})</h2>\n{note}"
        "<table><thead><tr><th>First missing bar</th><th>Last missing bar</th><th>Missing bars</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody></table>\n</section>"
    )


def _settings_table(settings: dict[str, Any]) -> str:
    rows = "\n".join(
        f"<tr><td>{_esc(key)}</td><td>{_esc(_plain_text(value))}</td></tr>" for key, value in settings.items()
    )
    return (
        '<section>\n<h2>Settings</h2>\n<div class="scroll"><table class="settings">'
        f"<thead><tr><th>Setting</th><th>Value</th></tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>\n</section>"
    )


def _plain_text(value: object) -> str:
    match value:
        case str():
            return value
        case Decimal():
            return decimal_text(value)
        case datetime() | np.datetime64():
            return iso_utc(value)
    return json.dumps(value, sort_keys=True, default=str)


# ---- charts ---------------------------------------------------------------------------------------------------------

_WIDTH = 960
_LEFT, _RIGHT, _TOP, _BOTTOM = 76, 16, 30, 28
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class _Line:
    label: str
    color: str
    x: NDArray[np.int64]
    y: NDArray[np.float64]
    filled: bool = False


@dataclass(frozen=True, slots=True)
class _Marker:
    x: int
    y: float
    entry: bool
    note: str


def _charts(report: BacktestReport) -> str:
    curve = report.curve
    if len(curve) == 0:
        return ""
    x = _ns(curve.times)
    equity_lines = [_line("Strategy", STRATEGY_COLOR, x, curve.equity)]
    for index, (name, baseline) in enumerate(report.baseline_curves.items()):
        color = BASELINE_COLORS.get(name, OTHER_COLORS[index % len(OTHER_COLORS)])
        equity_lines.append(_line(name, color, _ns(baseline.times), baseline.equity))
    drawdown = (curve.equity / np.maximum.accumulate(curve.equity) - 1.0) * 100
    price = _line("Close", "#374151", x, curve.close)
    markers = [marker for trade in report.trades for marker in _trade_markers(trade)]
    return "\n".join(
        (
            "<section>\n<h2>Equity</h2>",
            _svg_chart(equity_lines, height=320, label="Equity of the strategy and the baselines"),
            '<h2>Drawdown</h2><p class="note">Below the running peak of the strategy\'s equity.</p>',
            _svg_chart(
                [_line("Drawdown", EXIT_COLOR, x, drawdown, filled=True)],
                height=170,
                label="Strategy drawdown",
                suffix="%",
                legend=False,
            ),
            "<h2>Price and trades</h2>",
            _svg_chart([price], height=320, label="Close price with entries and exits", markers=markers),
            "</section>",
        )
    )


def _line(label: str, color: str, x: NDArray[np.int64], y: NDArray[np.float64], *, filled: bool = False) -> _Line:
    thin_x, thin_y = downsample(x, np.asarray(y, dtype=np.float64))
    return _Line(label, color, thin_x, thin_y, filled)


def _trade_markers(trade: TradeRecord) -> tuple[_Marker, _Marker]:
    return (
        _Marker(
            _ns_of(trade.entry_time),
            float(trade.entry_price),
            entry=True,
            note=f"entry {iso_utc(trade.entry_time)} @ {decimal_text(trade.entry_price)}",
        ),
        _Marker(
            _ns_of(trade.exit_time),
            float(trade.exit_price),
            entry=False,
            note=f"exit {iso_utc(trade.exit_time)} @ {decimal_text(trade.exit_price)} ({trade.exit_reason}), "
            f"pnl {decimal_text(trade.pnl)}",
        ),
    )


def _svg_chart(
    lines: list[_Line],
    *,
    height: int,
    label: str,
    suffix: str = "",
    legend: bool = True,
    markers: Sequence[_Marker] = (),
) -> str:
    xs = np.concatenate([line.x for line in lines] + [np.array([m.x for m in markers], dtype=np.int64)])
    ys = np.concatenate(
        [line.y for line in lines]
        + [np.array([m.y for m in markers], dtype=np.float64)]
        + [np.zeros(1) for line in lines if line.filled]
    )
    x_low, x_high = int(xs.min()), int(xs.max())
    if x_high == x_low:
        x_low, x_high = x_low - _NS_PER_DAY // 24, x_high + _NS_PER_DAY // 24
    ticks = _nice_ticks(float(ys.min()), float(ys.max()))
    y_low, y_high = ticks[0], ticks[-1]
    right, bottom = _WIDTH - _RIGHT, height - _BOTTOM

    # Both map a whole series or one value (a tick, a marker): the result has the argument's shape.
    def px[V: (NDArray[np.float64], np.float64)](values: V) -> V:
        return _LEFT + (values - x_low) / (x_high - x_low) * (right - _LEFT)

    def py[V: (NDArray[np.float64], np.float64)](values: V) -> V:
        return bottom - (values - y_low) / (y_high - y_low) * (bottom - _TOP)

    parts = [f'<svg viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{_esc(label)}">']
    decimals = _tick_decimals(ticks[1] - ticks[0])
    for tick in ticks:
        y = float(py(np.float64(tick)))
        parts.append(f'<line x1="{_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>')
        text = f"{tick:,.{decimals}f}{suffix}"
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(text)}</text>')
    parts.append(f'<line x1="{_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#9ca3af"/>')
    for position, anchor, text in _time_ticks(x_low, x_high):
        x = float(px(np.float64(position)))
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#9ca3af"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="{anchor}">{_esc(text)}</text>')

    for line in lines:
        points = _points(px(line.x.astype(np.float64)), py(line.y))
        if line.filled:
            zero = float(py(np.float64(0.0)))
            first, last = float(px(np.float64(line.x[0]))), float(px(np.float64(line.x[-1])))
            polygon = f"{first:.1f},{zero:.1f} {points} {last:.1f},{zero:.1f}"
            parts.append(f'<polygon points="{polygon}" fill="{line.color}" fill-opacity="0.18" stroke="none"/>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="{line.color}" stroke-width="1.4"/>')

    for marker in markers:
        x, y = float(px(np.float64(marker.x))), float(py(np.float64(marker.y)))
        if marker.entry:
            shape, color = f"{x:.1f},{y + 1:.1f} {x - 5:.1f},{y + 10:.1f} {x + 5:.1f},{y + 10:.1f}", ENTRY_COLOR
        else:
            shape, color = f"{x:.1f},{y - 1:.1f} {x - 5:.1f},{y - 10:.1f} {x + 5:.1f},{y - 10:.1f}", EXIT_COLOR
        parts.append(f'<polygon points="{shape}" fill="{color}"><title>{_esc(marker.note)}</title></polygon>')

    if legend:
        parts.append(_legend([(line.label, line.color) for line in lines], markers=bool(markers)))
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(items: list[tuple[str, str]], *, markers: bool) -> str:
    entries = [(f'<rect width="14" height="3" y="-4" fill="{color}"/>', label) for label, color in items]
    if markers:
        entries.append((f'<polygon points="7,-9 2,0 12,0" fill="{ENTRY_COLOR}"/>', "entry"))
        entries.append((f'<polygon points="7,0 2,-9 12,-9" fill="{EXIT_COLOR}"/>', "exit"))
    parts, x = [], _LEFT
    for swatch, label in entries:
        parts.append(f'<g transform="translate({x},16)">{swatch}<text x="18" y="0">{_esc(label)}</text></g>')
        # No text metrics without a browser; 6.5 px per character of an 11 px system font is close enough.
        x += 30 + int(len(label) * 6.5)
    return "".join(parts)


def _points(xs: NDArray[np.float64], ys: NDArray[np.float64]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))


def _nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round-numbered ticks spanning [low, high]; the first and last become the axis ends."""
    if high <= low:
        pad = abs(low) * 0.01 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    count = math.ceil((high - first) / step - 1e-9)
    # round() and + 0.0 strip float noise and negative zero, which would print as "-0.00".
    return [round(first + i * step, 12) + 0.0 for i in range(count + 1)]


def _tick_decimals(step: float) -> int:
    decimals = max(0, -math.floor(math.log10(step)))
    # A step of 2.5 * 10^k needs one digit more than its magnitude suggests.
    return decimals + 1 if round(step, decimals) != round(step, decimals + 1) else decimals


def _time_ticks(low: int, high: int, count: int = 6) -> list[tuple[int, str, str]]:
    fmt = "%Y-%m-%d" if high - low >= 3 * _NS_PER_DAY else "%m-%d %H:%M"
    positions = np.linspace(low, high, count).astype(np.int64).tolist()
    anchors = ["start", *["middle"] * (count - 2), "end"]
    return [
        (position, anchor, datetime.fromtimestamp(position / 1e9, UTC).strftime(fmt))
        for position, anchor in zip(positions, anchors, strict=True)
    ]


def _ns(times: NDArray[np.datetime64]) -> NDArray[np.int64]:
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64)


def _ns_of(moment: datetime) -> int:
    return int(np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns").astype(np.int64))


def _time_text(moment: np.datetime64) -> str:
    return iso_utc(moment).removesuffix("Z").replace("T", " ")[:16]
