"""Line charts as inline SVG, with no script and no external reference: lines broken into segments, shaded bands,
entry and exit markers, round-numbered axes and a legend that wraps. `backtest.charts` decides what they show.

Long series are thinned by `downsample`, which keeps every extreme. A chart comes in a `Layout`: the report draws
each one for a wide and for a narrow screen, as an SVG scales its text with its width.
"""

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

MAX_POINTS = 2_000
ENTRY_COLOR = "#16a34a"
EXIT_COLOR = "#dc2626"
GAP_COLOR = "#9ca3af"
_WIDTH = 960
_LEFT, _RIGHT, _TOP, _BOTTOM = 76, 16, 30, 28
_LEGEND_ROW = 14
_NS_PER_DAY = 86_400 * 10**9

# Narrower than this (in viewBox units) a one-bar gap in a long window would vanish; its title still gives the span.
_MIN_BAND_WIDTH = 3.0
MAX_LISTED_BANDS = 5


@dataclass(frozen=True, slots=True)
class Layout:
    """One rendering of the charts: its viewBox width, left margin (room for the y labels), time ticks, the most
    points a line keeps, chart heights (equity and price, drawdown), the CSS class the page shows it by."""

    width: int
    left: int
    time_ticks: int
    max_points: int
    heights: tuple[int, int]
    css_class: str


WIDE = Layout(_WIDTH, _LEFT, 6, MAX_POINTS, (320, 170), "wide")
NARROW = Layout(360, 58, 3, 700, (260, 150), "narrow")


@dataclass(frozen=True, slots=True)
class Line:
    """One series as the pieces drawn between gaps: x in ns since the epoch (bar open times), y in chart units."""

    label: str
    color: str
    segments: list[tuple[NDArray[np.int64], NDArray[np.float64]]]
    filled: bool = False


@dataclass(frozen=True, slots=True)
class Band:
    """A gap in the data: from the last bar before it to the first bar after it (ns), and what is missing."""

    x0: int
    x1: int
    note: str


@dataclass(frozen=True, slots=True)
class Marker:
    x: int
    y: float
    entry: bool
    note: str


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


def svg_chart(
    lines: list[Line],
    layout: Layout,
    *,
    height: int,
    label: str,
    suffix: str = "",
    legend: bool = True,
    markers: Sequence[Marker] = (),
    bands: Sequence[Band] = (),
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
            band.note for band in bands[:MAX_LISTED_BANDS]
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


def _legend_entries(lines: list[Line], *, markers: bool, gaps: bool) -> list[tuple[str, str]]:
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
