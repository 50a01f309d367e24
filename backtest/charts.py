"""The report's charts as inline SVG: equity against the baselines, drawdown, and the price with entries and exits.

No script and no external reference: the page stays self-contained. Long series are thinned by `downsample`, which
keeps every extreme. A gap in the data inside the window breaks every line between the bars on either side of it and
is shaded there with a grey band titled with the missing bars, so no straight segment pretends to be data.

Each chart is drawn twice, for a wide and for a narrow screen (the page's CSS shows one): an SVG scales its text
with its width, so the 960-unit-wide chart scaled to a 390 px phone would print 11-unit text about 4 px tall. The
narrow one is 360 units wide, so its text keeps close to its size in px there.

What each chart shows is decided here; `backtest.svg` draws them.
"""

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backtest.results import BacktestReport, TradeRecord, decimal_text, iso_utc
from backtest.svg import (
    EXIT_COLOR,
    MAX_LISTED_BANDS,
    MAX_POINTS,
    NARROW,
    WIDE,
    Band,
    Layout,
    Line,
    Marker,
    downsample,
    svg_chart,
)

STRATEGY_COLOR = "#2563eb"
BASELINE_COLORS = {"buy_and_hold": "#6b7280", "rules": "#d97706"}
OTHER_COLORS = ("#7c3aed", "#0d9488", "#db2777", "#65a30d")


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


def _figures(report: BacktestReport, bands: list[Band], layout: Layout) -> tuple[str, str, str]:
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
        svg_chart(equity_lines, layout, height=tall, label="Equity of the strategy and the baselines", bands=bands),
        svg_chart(
            [_line("Drawdown", EXIT_COLOR, x, drawdown, cuts, filled=True, max_points=points)],
            layout,
            height=short,
            label="Strategy drawdown",
            suffix="%",
            legend=False,
            bands=bands,
        ),
        svg_chart(
            [price], layout, height=tall, label="Close price with entries and exits", markers=markers, bands=bands
        ),
    )


def _gap_bands(gaps: Sequence[dict[str, Any]], x: NDArray[np.int64]) -> list[Band]:
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
            bands.append(Band(int(x[after - 1]), int(x[after]), note))
    return bands


def _gap_note(bands: Sequence[Band]) -> str:
    """The gaps in words above the charts, which on a phone are too small to read a band's label from."""
    if not bands:
        return ""
    items = "".join(f"<li>{_esc(band.note)}</li>" for band in bands[:MAX_LISTED_BANDS])
    more = (
        f"<li>and {len(bands) - MAX_LISTED_BANDS:,} more (see Data gaps)</li>" if len(bands) > MAX_LISTED_BANDS else ""
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
) -> Line:
    """The series split before each bar in `cuts` (the first bar after a gap), each piece thinned on its own so
    that both bars beside a gap stay drawn; each piece gets a share of max_points by its length."""
    values = np.asarray(y, dtype=np.float64)
    positions = [int(p) for p in np.searchsorted(x, np.asarray(cuts, dtype=np.int64)) if 0 < p < len(x)]
    segments = []
    for piece_x, piece_y in zip(np.split(x, positions), np.split(values, positions), strict=True):
        share = max(4, max_points * len(piece_x) // len(x))
        segments.append(downsample(piece_x, piece_y, share))
    return Line(label, color, segments, filled)


def _trade_markers(trade: TradeRecord) -> tuple[Marker, Marker]:
    return (
        Marker(
            _ns_of(trade.entry_time),
            float(trade.entry_price),
            entry=True,
            note=f"entry {iso_utc(trade.entry_time)} @ {decimal_text(trade.entry_price)}",
        ),
        Marker(
            _ns_of(trade.exit_time),
            float(trade.exit_price),
            entry=False,
            note=f"exit {iso_utc(trade.exit_time)} @ {decimal_text(trade.exit_price)} ({trade.exit_reason}), "
            f"pnl {decimal_text(trade.pnl)}",
        ),
    )


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _ns(times: NDArray[np.datetime64]) -> NDArray[np.int64]:
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64)


def _ns_of(moment: datetime) -> int:
    return int(np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns").astype(np.int64))
