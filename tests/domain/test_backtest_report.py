"""Backtest outputs: a self-contained, escaped HTML page, readable charts, and the trades CSV."""

import csv
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from backtest.charts import MAX_POINTS, downsample
from backtest.metrics import compute_metrics
from backtest.report import (
    MAX_TABLE_ROWS,
    render_html,
    write_html,
    write_summary_json,
    write_trades_csv,
)
from backtest.results import AiUsage, BacktestReport, EquityCurve, TradeRecord

START = datetime(2024, 3, 1, tzinfo=UTC)
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def make_curve(count, seed=7):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
    times = np.datetime64("2024-03-01T00:00", "ns") + np.arange(count) * np.timedelta64(1, "h")
    in_position = (np.arange(count) // 10) % 2 == 1
    equity = 1000 * np.exp(np.cumsum(np.where(in_position, rng.normal(0, 0.005, count), 0.0)))
    return EquityCurve(times=times, equity=equity, close=close, in_position=in_position)


def make_trades(count):
    return [
        TradeRecord(
            entry_time=START + timedelta(hours=20 * index + 10),
            exit_time=START + timedelta(hours=20 * index + 19),
            entry_price=Decimal("100.5"),
            exit_price=Decimal("101.25"),
            quantity=Decimal("0.00001"),
            pnl=Decimal("-0.0000001") if index % 2 else Decimal("0.0000055"),
            fees=Decimal("0.000002"),
            exit_reason="stop" if index % 2 else "take_profit",
        )
        for index in range(count)
    ]


def make_report(bars=500, trades=3, symbol="BTC/USDT", warnings=("Window lies before the model's knowledge cutoff",)):
    curve = make_curve(bars)
    hold = EquityCurve(times=curve.times, equity=curve.close * 10, close=curve.close, in_position=np.ones(bars, bool))
    records = make_trades(trades)
    return BacktestReport(
        settings={"symbol": symbol, "timeframe": "1h", "signal_source": "rules", "fee_pct": Decimal("0.1")},
        metrics=compute_metrics(curve, records, 1000.0, 8760.0, 0.5, 0.02),
        baselines={"buy_and_hold": compute_metrics(hold, [], 1000.0, 8760.0, 1.0, 0.0)},
        ai=AiUsage(decisions=40, cache_hits=38, cache_misses=2, cost_usd=Decimal("0.0031"), estimated_cost_usd=None),
        trades=records,
        gaps=[],
        warnings=list(warnings),
        curve=curve,
        baseline_curves={"buy_and_hold": hold},
    )


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    collector = Collector()
    collector.feed(page)
    collector.close()
    return collector


def test_html_is_self_contained():
    page = render_html(make_report())
    assert "http://" not in page and "https://" not in page
    tags = parse(page).tags
    assert not [attrs for tag, attrs in tags if tag in ("script", "link", "img", "iframe")]
    assert not [attrs for _, attrs in tags if "src" in attrs or "href" in attrs]


def test_html_has_the_three_charts_legend_markers_and_tables():
    report = make_report(trades=4)
    page = render_html(report)
    parsed = parse(page)
    svgs = [attrs for tag, attrs in parsed.tags if tag == "svg"]
    assert len(svgs) == 3
    assert page.count("<polyline") == 4  # strategy, buy-and-hold, drawdown, price
    assert "buy_and_hold" in "".join(parsed.text)
    assert page.count("#16a34a") >= 4 and page.count("#dc2626") >= 4  # entry/exit markers plus legend swatches
    assert "2024-03-01" in page  # date axis labels
    text = "".join(parsed.text)
    assert "Window lies before the model" in text
    assert "Sharpe" in text and "Return after AI cost" in text
    assert "40 decisions" in text and "38 cache hits" in text and "2 cache misses" in text and "$0.0031" in text
    assert "0.0000055" in text  # exact decimal, not 5.5E-6


def test_malicious_symbol_is_escaped():
    evil = '<script>alert("x")</script>'
    page = render_html(make_report(symbol=evil))
    assert "<script" not in page
    assert "&lt;script&gt;" in page


def test_trades_table_is_capped_with_a_note():
    page = render_html(make_report(bars=6000, trades=MAX_TABLE_ROWS + 25))
    assert f"Showing the first {MAX_TABLE_ROWS}" in page
    assert f"of {MAX_TABLE_ROWS + 25}" in page


def test_missing_baselines_are_called_out():
    bare = replace(make_report(warnings=()), baselines={}, baseline_curves={})
    assert "No baseline was run" in render_html(bare)


def test_long_curves_are_downsampled_in_the_svg():
    page = render_html(make_report(bars=40_000))
    for points in re.findall(r'<polyline points="([^"]*)"', page):
        assert len(points.split()) <= MAX_POINTS


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9), min_size=1, max_size=5000), st.integers(4, 300))
def test_downsampling_keeps_extremes_ends_and_order(values, max_points):
    series = np.array(values)
    times = np.arange(len(series), dtype=np.int64)
    kept_times, kept = downsample(times, series, max_points)
    assert len(kept) <= max_points
    assert kept.min() == series.min() and kept.max() == series.max()
    assert kept_times[0] == 0 and kept_times[-1] == len(series) - 1
    assert (np.diff(kept_times) > 0).all()
    assert (series[kept_times] == kept).all()


def test_downsampling_keeps_a_one_bar_crash():
    series = np.full(100_000, 50.0)
    series[61_234] = 3.0
    _, kept = downsample(np.arange(series.size), series)
    assert kept.size <= MAX_POINTS
    assert kept.min() == 3.0


def test_trades_csv_has_a_header_and_one_row_per_trade(tmp_path):
    path = tmp_path / "trades.csv"
    write_trades_csv(make_trades(5), path)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["entry_time", "exit_time", "entry_price", "exit_price", "qty", "pnl", "fees", "exit_reason"]
    assert len(rows) == 6
    for row in rows[1:]:
        assert ISO_UTC.match(row[0]) and ISO_UTC.match(row[1])
    assert rows[1][:2] == ["2024-03-01T10:00:00Z", "2024-03-01T19:00:00Z"]
    assert rows[2][5] == "-0.0000001"


def test_empty_trades_csv_still_has_its_header(tmp_path):
    path = tmp_path / "trades.csv"
    write_trades_csv([], path)
    assert path.read_text(encoding="utf-8").splitlines() == [
        "entry_time,exit_time,entry_price,exit_price,qty,pnl,fees,exit_reason"
    ]


def test_summary_and_html_files_are_written(tmp_path):
    report = make_report(bars=1)
    write_summary_json(report, tmp_path / "summary.json")
    write_html(report, tmp_path / "report.html")
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["metrics"]["sharpe"] is None
    assert summary["settings"]["fee_pct"] == "0.1"
    parse((tmp_path / "report.html").read_text(encoding="utf-8"))


def test_the_first_box_lists_the_gaps_count_missing_bars_and_the_longest():
    report = make_report()
    gaps = [
        {"first_missing": "2024-01-02T03:00:00+00:00", "last_missing": "2024-01-02T03:00:00+00:00", "missing_bars": 1},
        {"first_missing": "2024-01-05T00:00:00+00:00", "last_missing": "2024-01-06T23:00:00+00:00", "missing_bars": 48},
    ]
    html = render_html(replace(report, gaps=gaps))
    box = html[html.index("Read this first") : html.index("</section>")]
    assert (
        "2 gap(s) in the data, 49 missing bar(s) in all; the longest: 2024-01-05 00:00 -&gt; 2024-01-06 23:00 UTC, "
        "48 bar(s)"
    ) in box


def test_every_chart_breaks_its_lines_across_a_gap_and_shades_it_with_a_titled_band():
    # 100 hourly bars, 48 missing (2024-03-05 04:00 -> 2024-03-07 03:00), 100 more; a gap in the warm-up before the
    # window is listed in the report but not drawn.
    hours = np.concatenate((np.arange(100), np.arange(148, 248)))
    times = np.datetime64("2024-03-01T00:00", "ns") + hours * np.timedelta64(1, "h")
    equity = np.linspace(1000.0, 1100.0, len(hours))
    curve = EquityCurve(times=times, equity=equity, close=equity / 10, in_position=np.ones(len(hours), bool))
    gaps = [
        {"first_missing": "2024-02-20T00:00:00+00:00", "last_missing": "2024-02-20T01:00:00+00:00", "missing_bars": 2},
        {"first_missing": "2024-03-05T04:00:00+00:00", "last_missing": "2024-03-07T03:00:00+00:00", "missing_bars": 48},
    ]
    report = replace(make_report(trades=0), curve=curve, baseline_curves={"buy_and_hold": curve}, gaps=gaps)
    page = render_html(report)

    note = "no data: 2024-03-05 04:00 -&gt; 2024-03-07 03:00 UTC, 48 bars"
    assert page.count(f"<title>{note}</title>") == 3  # equity, drawdown, price
    assert "2024-02-20" not in page[page.index("<svg") : page.rindex("</svg>")]
    assert f"<li>{note}</li>" in page  # in words above the charts too, for narrow screens
    # The time axis runs from hour 0 to hour 247 over x = 76..944: the last bar before the gap (hour 99) is at 423.9,
    # the first after it (hour 148) at 596.1; the band spans exactly that and the lines stop and restart there.
    assert page.count('<rect x="423.9" y="30" width="172.2"') == 3
    polylines = re.findall(r'<polyline points="([^"]*)"', page)
    assert len(polylines) == 8  # strategy, buy-and-hold, drawdown, price: two pieces each
    for before, after in zip(polylines[::2], polylines[1::2], strict=True):
        assert before.split()[-1].startswith("423.9,") and after.split()[0].startswith("596.1,")
    xs = [float(point.split(",")[0]) for points in polylines for point in points.split()]
    assert not [x for x in xs if 423.9 < x < 596.1]
