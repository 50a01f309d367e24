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

from backtest.chart_data import chart_panes
from backtest.metrics import compute_metrics
from backtest.report import (
    MAX_TABLE_ROWS,
    render_html,
    report_view,
    template_environment,
    write_html,
    write_summary_json,
    write_trades_csv,
)
from backtest.results import AiUsage, BacktestReport, EquityCurve, TradeRecord
from backtest.runner import gap_warnings
from backtest.svg import MAX_POINTS, downsample
from exchanges.candles import Gap

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
    # Each chart twice: for a wide and a narrow screen (the CSS shows one).
    assert [svg["class"] for svg in svgs] == ["wide", "narrow"] * 3
    assert page.count("<polyline") == 8  # strategy, buy-and-hold, drawdown, price; in both layouts
    assert "buy_and_hold" in "".join(parsed.text)
    assert page.count("#16a34a") >= 4 and page.count("#dc2626") >= 4  # entry/exit markers plus legend swatches
    assert "2024-03-01" in page  # date axis labels
    text = "".join(parsed.text)
    assert "Window lies before the model" in text
    assert "Sharpe" in text and "Return after AI cost" in text
    assert "40 decisions" in text and "38 cache hits" in text and "2 cache misses" in text and "$0.0031" in text
    assert "0.0000055 USDT" in text  # under a cent: two significant digits, not 5.5E-6 or 0.00


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
    gaps = [
        Gap(datetime(2024, 1, 2, 3, tzinfo=UTC), datetime(2024, 1, 2, 3, tzinfo=UTC), 1),
        Gap(datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, 23, tzinfo=UTC), 48),
    ]
    warning = (
        "the window spans 2 gap(s) in the data, 49 missing bar(s) in all; the longest: 2024-01-05 00:00 -> "
        "2024-01-06 23:00 UTC, 48 bar(s) (2.0 days). Nothing is traded or filled inside a gap, and the metrics count "
        "it as calendar time: CAGR, volatility, Sharpe and Sortino are annualised over the calendar, and the bar "
        "after a gap carries the whole move across it as one return."
    )
    assert gap_warnings(gaps, "1h") == [warning]
    assert gap_warnings([], "1h") == []
    html = render_html(make_report(warnings=gap_warnings(gaps, "1h")))
    box = html[html.index("Read this first") : html.index("</section>")]
    assert box.count("<li>") == 1 and warning.replace(">", "&gt;") in box


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
    assert page.count(f"<title>{note}</title>") == 6  # equity, drawdown, price; wide and narrow
    assert "2024-02-20" not in page[page.index("<svg") : page.rindex("</svg>")]
    wide = "".join(re.findall(r'<svg class="wide".*?</svg>', page, re.S))
    assert f"<li>{note}</li>" in page  # in words above the charts too, for narrow screens
    # The time axis runs from hour 0 to hour 247 over x = 76..944: the last bar before the gap (hour 99) is at 423.9,
    # the first after it (hour 148) at 596.1; the band spans exactly that and the lines stop and restart there.
    assert wide.count('<rect x="423.9" y="30" width="172.2"') == 3
    polylines = re.findall(r'<polyline points="([^"]*)"', wide)
    assert len(polylines) == 8  # strategy, buy-and-hold, drawdown, price: two pieces each
    for before, after in zip(polylines[::2], polylines[1::2], strict=True):
        assert before.split()[-1].startswith("423.9,") and after.split()[0].startswith("596.1,")
    xs = [float(point.split(",")[0]) for points in polylines for point in points.split()]
    assert not [x for x in xs if 423.9 < x < 596.1]


def rows_of(page, heading):
    """The rows of the table under the <h2> that starts with `heading`, as lists of cell texts."""
    section = page[page.index(f"<h2>{heading}") :]
    section = section[: section.index("</section>")]
    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)
    return [[html_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)] for row in rows]


def html_text(fragment):
    return "".join(parse(fragment).text)


def test_trades_table_reads_in_words_utc_minutes_and_money_with_its_currency():
    trade = TradeRecord(
        entry_time=datetime(2021, 1, 1, 1, tzinfo=UTC),
        exit_time=datetime(2021, 1, 2, 12, tzinfo=UTC),
        entry_price=Decimal("28995.13"),
        exit_price=Decimal("30509.63"),
        quantity=Decimal("0.00132"),
        pnl=Decimal("1.9205937168"),
        fees=Decimal("0.0785462832"),
        exit_reason="take_profit",
    )
    page = render_html(replace(make_report(trades=0), trades=[trade, *make_trades(2)]))
    rows = rows_of(page, "Trades")
    assert rows[0] == [
        "#",
        "Entry",
        "Exit",
        "Entry price (USDT)",
        "Exit price (USDT)",
        "Quantity (BTC)",
        "P&L",
        "Fees",
        "Exit reason",
    ]
    assert rows[1] == [
        "1",
        "2021-01-01 01:00 UTC",
        "2021-01-02 12:00 UTC",
        "28,995.13",
        "30,509.63",
        "0.00132",
        "1.92 USDT",
        "0.08 USDT",
        "take profit",
    ]
    # Amounts under a cent keep two significant digits instead of reading 0.00.
    assert rows[2][6:] == ["0.0000055 USDT", "0.000002 USDT", "take profit"]
    assert rows[3][6:] == ["-0.0000001 USDT", "0.000002 USDT", "stop"]


def test_gaps_table_shows_utc_minutes_and_counts_with_thousands_separators():
    gaps = [
        {"first_missing": "2020-12-25T02:00:00+00:00", "last_missing": "2020-12-25T02:00:00+00:00", "missing_bars": 1},
        {
            "first_missing": "2021-06-10T00:00:00+00:00",
            "last_missing": "2023-12-31T23:00:00+00:00",
            "missing_bars": 22440,
        },
    ]
    rows = rows_of(render_html(replace(make_report(), gaps=gaps)), "Data gaps")
    assert rows == [
        ["First missing bar", "Last missing bar", "Missing bars"],
        ["2020-12-25 02:00 UTC", "2020-12-25 02:00 UTC", "1"],
        ["2021-06-10 00:00 UTC", "2023-12-31 23:00 UTC", "22,440"],
    ]
    assert '<div class="scroll"><table><thead><tr><th>First missing bar' in render_html(
        replace(make_report(), gaps=gaps)
    )


def test_metrics_show_money_in_the_quote_currency_and_ai_cost_in_usd():
    report = make_report()
    metrics = {**report.metrics, "fees_paid": 8.8612, "final_equity": 101.70123, "expectancy": 114.5568}
    rows = {row[0]: row[1:] for row in rows_of(render_html(replace(report, metrics=metrics)), "Metrics")}
    assert rows["Fees paid"] == ["8.86 USDT", "1.00 USDT"]
    assert rows["Final equity"][0] == "101.70 USDT"
    assert rows["Expectancy per trade"] == ["114.56 USDT", "—"]
    assert rows["AI cost"] == ["0.02 USD", "0.00 USD"]


def test_settings_show_each_risk_setting_as_its_own_row_and_wrap_long_values():
    settings = {
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "starting_balance": "100",
        "fee_rate": "0.001",
        "every": 1,
        "risk": {"risk_per_trade_pct": "1", "max_open_positions": 2, "symbol_allowlist": [], "trailing_stop_pct": None},
        "signal_source": "rules:sma_cross",
        "params": {},
        "window_start": "2021-01-01T00:00:00+00:00",
        "bars": 5297,
        "risk_refusals": {"MAX_POSITIONS": 1234},
    }
    page = render_html(replace(make_report(), settings=settings))
    assert rows_of(page, "Settings") == [
        ["Setting", "Value"],
        ["Symbol", "BTC/USDT"],
        ["Timeframe", "1h"],
        ["Starting balance", "100.00 USDT"],
        ["Fee rate (fraction per fill)", "0.001"],
        ["Decide every (bars)", "1"],
        ["Risk: Risk per trade pct", "1"],
        ["Risk: Max open positions", "2"],
        ["Risk: Symbol allowlist", "none"],
        ["Risk: Trailing stop pct", "none"],
        ["Signal source", "rules:sma_cross"],
        ["Strategy parameters", "none"],
        ["First decision bar", "2021-01-01 00:00 UTC"],
        ["Bars in the window", "5,297"],
        ["Risk refusals: Max positions", "1,234"],
    ]
    css = page[page.index("<style>") : page.index("</style>")]
    assert (
        "table.settings th, table.settings td { text-align: left; white-space: normal; overflow-wrap: anywhere; }"
        in css
    )


def test_every_table_scrolls_in_its_own_box_and_charts_have_a_narrow_layout_for_phones():
    gaps = [
        {"first_missing": "2024-01-02T03:00:00+00:00", "last_missing": "2024-01-02T03:00:00+00:00", "missing_bars": 1}
    ]
    page = render_html(replace(make_report(trades=3), gaps=gaps))
    assert page.count("<table") == 4 and page.count('<div class="scroll"><table') == 4
    css = page[page.index("<style>") : page.index("</style>")]
    assert ".scroll { overflow-x: auto; max-width: 100%; }" in css
    assert "@media (max-width: 640px) {" in css and "svg.wide { display: none; }" in css
    # 360 viewBox units drawn across a 390 px phone (less the page's padding): 11-unit text stays about 10.7 px.
    narrow = re.findall(r'<svg class="narrow" viewBox="0 0 (\d+) (\d+)"', page)
    assert narrow == [("360", "260"), ("360", "150"), ("360", "260")]
    # A legend too long for 360 units wraps to a second row, and its chart grows by that row (14 units).
    two_baselines = replace(
        make_report(), baseline_curves={"buy_and_hold": make_curve(500), "rules:sma_cross": make_curve(500)}
    )
    assert re.findall(r'<svg class="narrow" viewBox="0 0 (\d+) (\d+)"', render_html(two_baselines))[0] == ("360", "274")
    assert re.findall(r'<svg class="wide" viewBox="0 0 (\d+) (\d+)"', page) == [
        ("960", "320"),
        ("960", "170"),
        ("960", "320"),
    ]


def test_the_body_template_renders_the_sections_alone_and_can_leave_out_the_svg_charts():
    evil = '<script>alert("x")</script>/USDT'
    view = report_view(make_report(symbol=evil, trades=2), with_charts=False)
    body = template_environment().get_template("report_body.html").render(report=view)
    assert "<html" not in body and "<style>" not in body and "<svg" not in body
    assert "<script" not in body and "&lt;script&gt;" in body
    assert "<h2>Metrics</h2>" in body and "<h2>Trades (2)</h2>" in body and "<h2>Settings</h2>" in body
    # The standalone page is that body inside its shell, with the charts.
    page = render_html(make_report(trades=2))
    assert page.count("<svg") == 6 and "<h2>Trades (2)</h2>" in page


def test_chart_data_has_equity_drawdown_and_price_with_a_marker_per_entry_and_exit():
    report = make_report(bars=120, trades=3)
    panes = chart_panes(report)["panes"]
    assert [pane["title"] for pane in panes] == ["Equity (USDT)", "Drawdown (%)", "Price and trades (USDT)"]
    equity, hold = panes[0]["series"]
    assert equity["name"] == "Strategy (USDT)" and hold["name"] == "Buy and hold (USDT)"
    assert len(equity["data"]) == 120 and equity["data"][0]["time"] == int(START.timestamp())
    assert all(point["value"] <= 0 for point in panes[1]["series"][0]["data"])
    price = panes[2]["series"][0]
    assert price["type"] == "line"  # no candles given: the closes
    markers = price["markers"]
    assert [marker["text"] for marker in markers] == ["Buy", "Target", "Buy", "Stop", "Buy", "Target"]
    assert [marker["time"] for marker in markers] == sorted(marker["time"] for marker in markers)
    assert chart_panes(replace(report, curve=make_curve(0), baseline_curves={})) == {"panes": []}
