"""The report's charts as inline SVG: equity against the baselines, drawdown, and the price with entries and exits.

No script and no external reference: the page stays self-contained. Long series are thinned by `downsample`, which
keeps every extreme. A gap in the data inside the window breaks every line between the bars on either side of it and
is shaded there with a grey band titled with the missing bars, so no straight segment pretends to be data.

Each chart is drawn twice, for a wide and for a narrow screen (the page's CSS shows one): an SVG scales its text
with its width, so the 960-unit-wide chart scaled to a 390 px phone would print 11-unit text about 4 px tall. The
narrow one is 360 units wide, so its text keeps close to its size in px there.
"""

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backtest.results import BacktestReport, TradeRecord, decimal_text, iso_utc

MAX_POINTS = 2_000
STRATEGY_COLOR = "#2563eb"
BASELINE_COLORS = {"buy_and_hold": "#6b7280", "rules": "#d97706"}
OTHER_COLORS = ("#7c3aed", "#0d9488", "#db2777", "#65a30d")
ENTRY_COLOR = "#16a34a"
EXIT_COLOR = "#dc2626"
GAP_COLOR = "#9ca3af"


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


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


_WIDTH = 960
_LEFT, _RIGHT, _TOP, _BOTTOM = 76, 16, 30, 28
_LEGEND_ROW = 14


@dataclass(frozen=True, slots=True)
class _Layout:
    """One rendering of the charts: its viewBox width, left margin (room for the y labels), time ticks, the most
    points a line keeps, chart heights (equity and price, drawdown), the CSS class the page shows it by."""

    width: int
    left: int
    time_ticks: int
    max_points: int
    heights: tuple[int, int]
    css_class: str


WIDE = _Layout(_WIDTH, _LEFT, 6, MAX_POINTS, (320, 170), "wide")
NARROW = _Layout(360, 58, 3, 700, (260, 150), "narrow")
_NS_PER_DAY = 86_400 * 10**9
# Narrower than this (in viewBox units) a one-bar gap in a long window would vanish; its title still gives the span.
_MIN_BAND_WIDTH = 3.0
_MAX_LISTED_BANDS = 5


@dataclass(frozen=True, slots=True)
class _Line:
    """One series as the pieces drawn between gaps: x in ns since the epoch (bar open times), y in chart units."""

    label: str
    color: str
    segments: list[tuple[NDArray[np.int64], NDArray[np.float64]]]
    filled: bool = False


@dataclass(frozen=True, slots=True)
class _Band:
    """A gap in the data: from the last bar before it to the first bar after it (ns), and what is missing."""

    x0: int
    x1: int
    note: str


@dataclass(frozen=True, slots=True)
class _Marker:
    x: int
    y: float
    entry: bool
    note: str


def charts(report: BacktestReport) -> str:
    """The chart section of the report page (empty for an empty curve): each chart as a wide and a narrow SVG."""
    curve = report.curve
    if len(curve) == 0:
        return ""
    bands = _gap_bands(report.gaps, _ns(curve.times))
    wide, narrow = _figures(report, bands, WIDE), _figures(report, bands, NARROW)
    equity, drawdown, price = (f"{w}\n{n}" for w, n in zip(wide, narrow, strict=True))
    return "\n".join(
        (
            "<section>\n<h2>Equity</h2>",
            _gap_note(bands),
            equity,
            '<h2>Drawdown</h2><p class="note">Below the running peak of the strategy\'s equity.</p>',
            drawdown,
            "<h2>Price and trades</h2>",
            price,
            "</section>",
        )
    )


def _figures(report: BacktestReport, bands: list[_Band], layout: _Layout) -> tuple[str, str, str]:
    """The equity, drawdown and price charts in one layout."""
    curve = report.curve
    x = _ns(curve.times)
    cuts = [band.x1 for band in bands]
    points = layout.max_points
    equity_lines = [_line("Strategy", STRATEGY_COLOR, x, curve.equity, cuts, max_points=points)]
    for index, (name, baseline) in enumerate(report.baseline_curves.items()):
        color = BASELINE_COLORS.get(name, OTHER_COLORS[index % len(OTHER_COLORS)])
        equity_lines.append(_line(name, color, _ns(baseline.times), baseline.equity, cuts, max_points=points))
    drawdown = (curve.equity / np.maximum.accumulate(curve.equity) - 1.0) * 100
    price = _line("Close", "#374151", x, curve.close, cuts, max_points=points)
    markers = [marker for trade in report.trades for marker in _trade_markers(trade)]
    tall, short = layout.heights
    return (
        _svg_chart(equity_lines, layout, height=tall, label="Equity of the strategy and the baselines", bands=bands),
        _svg_chart(
            [_line("Drawdown", EXIT_COLOR, x, drawdown, cuts, filled=True, max_points=points)],
            layout,
            height=short,
            label="Strategy drawdown",
            suffix="%",
            legend=False,
            bands=bands,
        ),
        _svg_chart(
            [price], layout, height=tall, label="Close price with entries and exits", markers=markers, bands=bands
        ),
    )


def _gap_bands(gaps: Sequence[dict[str, Any]], x: NDArray[np.int64]) -> list[_Band]:
    """The gaps inside the charted bars `x` (ns, sorted); those in the warm-up before the window are not drawn."""
    bands = []
    for gap in gaps:
        first, last = (datetime.fromisoformat(str(gap[key])) for key in ("first_missing", "last_missing"))
        after = int(np.searchsorted(x, _ns_of(first)))
        if 0 < after < len(x):
            missing = int(gap["missing_bars"])
            note = (
                f"no data: {first.astimezone(UTC):%Y-%m-%d %H:%M} -> {last.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
                f"{missing:,} bar{'' if missing == 1 else 's'}"
            )
            bands.append(_Band(int(x[after - 1]), int(x[after]), note))
    return bands


def _gap_note(bands: Sequence[_Band]) -> str:
    """The gaps in words above the charts, which on a phone are too small to read a band's label from."""
    if not bands:
        return ""
    items = "".join(f"<li>{_esc(band.note)}</li>" for band in bands[:_MAX_LISTED_BANDS])
    more = (
        f"<li>and {len(bands) - _MAX_LISTED_BANDS:,} more (see Data gaps)</li>"
        if len(bands) > _MAX_LISTED_BANDS
        else ""
    )
    return (
        f'<p class="note">Grey bands mark {len(bands):,} gap(s) in the data inside the window; every line breaks '
        f'there instead of joining the bars on either side:</p><ul class="note">{items}{more}</ul>'
    )


def _line(
    label: str,
    color: str,
    x: NDArray[np.int64],
    y: NDArray[np.float64],
    cuts: Sequence[int],
    *,
    filled: bool = False,
    max_points: int = MAX_POINTS,
) -> _Line:
    """The series split before each bar in `cuts` (the first bar after a gap), each piece thinned on its own so
    that both bars beside a gap stay drawn; each piece gets a share of max_points by its length."""
    values = np.asarray(y, dtype=np.float64)
    positions = [int(p) for p in np.searchsorted(x, np.asarray(cuts, dtype=np.int64)) if 0 < p < len(x)]
    segments = []
    for piece_x, piece_y in zip(np.split(x, positions), np.split(values, positions), strict=True):
        share = max(4, max_points * len(piece_x) // len(x))
        segments.append(downsample(piece_x, piece_y, share))
    return _Line(label, color, segments, filled)


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
    layout: _Layout,
    *,
    height: int,
    label: str,
    suffix: str = "",
    legend: bool = True,
    markers: Sequence[_Marker] = (),
    bands: Sequence[_Band] = (),
) -> str:
    xs = np.concatenate(
        [x for line in lines for x, _ in line.segments] + [np.array([m.x for m in markers], dtype=np.int64)]
    )
    ys = np.concatenate(
        [y for line in lines for _, y in line.segments]
        + [np.array([m.y for m in markers], dtype=np.float64)]
        + [np.zeros(1) for line in lines if line.filled]
    )
    x_low, x_high = int(xs.min()), int(xs.max())
    if x_high == x_low:
        x_low, x_high = x_low - _NS_PER_DAY // 24, x_high + _NS_PER_DAY // 24
    ticks = _nice_ticks(float(ys.min()), float(ys.max()))
    y_low, y_high = ticks[0], ticks[-1]
    left = layout.left
    entries = _legend_entries(lines, markers=bool(markers), gaps=bool(bands)) if legend else []
    legend_rows = _legend_rows(entries, left, layout.width)
    # A legend that needs more than one row pushes the plot down and the chart grows by as much.
    top = _TOP + _LEGEND_ROW * max(0, len(legend_rows) - 1)
    height += top - _TOP
    right, bottom = layout.width - _RIGHT, height - _BOTTOM

    # Both map a whole series or one value (a tick, a marker): the result has the argument's shape.
    def px[V: (NDArray[np.float64], np.float64)](values: V) -> V:
        return left + (values - x_low) / (x_high - x_low) * (right - left)

    def py[V: (NDArray[np.float64], np.float64)](values: V) -> V:
        return bottom - (values - y_low) / (y_high - y_low) * (bottom - top)

    if bands:
        label += f"; {len(bands):,} gap(s) in the data shaded, " + "; ".join(
            band.note for band in bands[:_MAX_LISTED_BANDS]
        )
    parts = [
        f'<svg class="{layout.css_class}" viewBox="0 0 {layout.width} {height}" role="img" aria-label="{_esc(label)}">'
    ]
    decimals = _tick_decimals(ticks[1] - ticks[0])
    for tick in ticks:
        y = float(py(np.float64(tick)))
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>')
        text = f"{tick:,.{decimals}f}{suffix}"
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(text)}</text>')
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#9ca3af"/>')
    for position, anchor, text in _time_ticks(x_low, x_high, layout.time_ticks):
        x = float(px(np.float64(position)))
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#9ca3af"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="{anchor}">{_esc(text)}</text>')

    for band in bands:
        x0, x1 = float(px(np.float64(band.x0))), float(px(np.float64(band.x1)))
        if x1 - x0 < _MIN_BAND_WIDTH:
            x0, x1 = (x0 + x1 - _MIN_BAND_WIDTH) / 2, (x0 + x1 + _MIN_BAND_WIDTH) / 2
        parts.append(
            f'<g class="gap"><title>{_esc(band.note)}</title><rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" '
            f'height="{bottom - top}" fill="{GAP_COLOR}" fill-opacity="0.25"/>'
        )
        # The label only where it fits inside the band (6.5 px per character, as in the legend).
        if x1 - x0 >= 8 + 7 * 6.5:
            parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 14}" text-anchor="middle">no data</text>')
        parts.append("</g>")

    for line in lines:
        for piece_x, piece_y in line.segments:
            points = _points(px(piece_x.astype(np.float64)), py(piece_y))
            if line.filled:
                zero = float(py(np.float64(0.0)))
                first, last = float(px(np.float64(piece_x[0]))), float(px(np.float64(piece_x[-1])))
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

    parts.extend(legend_rows)
    parts.append("</svg>")
    return "\n".join(parts)


def _legend_entries(lines: list[_Line], *, markers: bool, gaps: bool) -> list[tuple[str, str]]:
    entries = [(f'<rect width="14" height="3" y="-4" fill="{line.color}"/>', line.label) for line in lines]
    if markers:
        entries.append((f'<polygon points="7,-9 2,0 12,0" fill="{ENTRY_COLOR}"/>', "entry"))
        entries.append((f'<polygon points="7,0 2,-9 12,-9" fill="{EXIT_COLOR}"/>', "exit"))
    if gaps:
        entries.append((f'<rect width="14" height="10" y="-9" fill="{GAP_COLOR}" fill-opacity="0.25"/>', "no data"))
    return entries


def _legend_rows(entries: list[tuple[str, str]], left: int, width: int) -> list[str]:
    """The legend entries laid out left to right from `left`, a new row when the next would pass the right edge."""
    rows: list[str] = []
    row, x = "", left
    for swatch, label in entries:
        # No text metrics without a browser; 6.5 units per character of 11-unit text is close enough.
        step = 30 + int(len(label) * 6.5)
        if row and x + step - 12 > width - _RIGHT:
            rows.append(row)
            row, x = "", left
        y = 16 + _LEGEND_ROW * len(rows)
        row += f'<g transform="translate({x},{y})">{swatch}<text x="18" y="0">{_esc(label)}</text></g>'
        x += step
    if row:
        rows.append(row)
    return rows


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


def time_text(moment: np.datetime64) -> str:
    """A bar time as "YYYY-MM-DD HH:MM" (UTC)."""
    return iso_utc(moment).removesuffix("Z").replace("T", " ")[:16]
