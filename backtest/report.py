"""Backtest outputs: trades.csv, summary.json and one self-contained HTML page.

The page works offline and from an e-mail attachment: inline CSS and inline SVG only, no script, no external
reference of any kind. Every piece of text that comes from data is escaped.

The page is for people: column headers in words, times as "YYYY-MM-DD HH:MM UTC", money with its currency (the
symbol's quote currency) to the cent, or to two significant digits below a cent, and counts with thousands
separators. trades.csv and summary.json stay machine-readable: field names, ISO-8601 times, exact decimals.
Every table sits in its own horizontal scroll box and long values wrap, so the page itself fits a phone's width.

Its sections are here; how values are written in them is in `backtest.report_text`, the charts in `backtest.charts`.
"""

import csv
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from backtest.charts import charts
from backtest.report_text import (
    base_currency,
    count_text,
    metric_text,
    money_setting_text,
    money_text,
    price_text,
    quote_currency,
    setting_label,
    setting_text,
    stored_time_text,
    time_text,
    time_text_utc,
    with_unit,
)
from backtest.results import BacktestReport, TradeRecord, decimal_text, report_json, trade_json

MAX_TABLE_ROWS = 200
CSV_COLUMNS = ("entry_time", "exit_time", "entry_price", "exit_price", "qty", "pnl", "fees", "exit_reason")

# Settings whose value is money in the quote currency, and labels for the keys the runner writes; any other key
# shows as its name in words ("max_open_positions" -> "Max open positions").
_MONEY_SETTINGS = frozenset({"starting_balance"})

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
    ("ai_cost_usd", "AI cost", "usd"),
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


def render_html(report: BacktestReport) -> str:
    """The whole report page as one string."""
    settings = report.settings
    symbol = str(settings.get("symbol", "?"))
    timeframe = str(settings.get("timeframe", "?"))
    title = f"Backtest {symbol} {timeframe}"
    quote, base = quote_currency(symbol), base_currency(symbol)
    sections = [
        _header(report, title),
        _warnings(report),
        _metrics_table(report, quote),
        _ai_line(report),
        charts(report),
        _trades_table(report.trades, quote, base),
        _gaps_table(report.gaps),
        _settings_table(settings, quote),
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
header, section { min-width: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; background: #fff; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid #eef0f3; text-align: right; white-space: nowrap;
  overflow-wrap: normal; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f4f6; font-weight: 600; }
td.pos { color: #15803d; } td.neg { color: #b91c1c; }
table.settings { table-layout: fixed; }
table.settings th, table.settings td { text-align: left; white-space: normal; overflow-wrap: anywhere; }
table.settings th:first-child { width: 40%; }
.note { color: #6b7280; font-size: 13px; margin: 6px 0; }
svg { display: block; width: 100%; height: auto; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; }
svg text { font: 11px system-ui, sans-serif; fill: #4b5563; }
svg.narrow { display: none; }
@media (max-width: 640px) {
  main { padding: 16px 12px 40px; }
  svg.wide { display: none; }
  svg.narrow { display: block; }
}
.scroll { overflow-x: auto; max-width: 100%; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header(report: BacktestReport, title: str) -> str:
    times = report.curve.times
    source = report.settings.get("signal_source", "?")
    window = f"{time_text(times[0])} → {time_text(times[-1])} UTC" if len(times) else "empty"
    return (
        f"<header>\n<h1>{_esc(title)}</h1>\n"
        f'<p class="sub">Window: {_esc(window)} ({len(times):,} bars)</p>\n'
        f'<p class="sub">Signal source: {_esc(source)}</p>\n</header>'
    )


def _warnings(report: BacktestReport) -> str:
    # The gaps are among the warnings already: the runner names the longest in the window and how metrics count it.
    items = list(report.warnings)
    if not report.baselines:
        items.append("No baseline was run on this window: the result cannot be compared with buy-and-hold.")
    if not items:
        return ""
    lines = "".join(f"<li>{_esc(item)}</li>" for item in items)
    return f'<section class="warning" role="alert"><strong>Read this first</strong><ul>{lines}</ul></section>'


def _metrics_table(report: BacktestReport, currency: str) -> str:
    columns = [("Strategy", report.metrics), *report.baselines.items()]
    known = {key for key, _, _ in METRIC_ROWS}
    extra = sorted({key for _, metrics in columns for key in metrics} - known)
    rows = [*METRIC_ROWS, *((key, key, "raw") for key in extra)]
    head = "".join(f"<th>{_esc(name)}</th>" for name, _ in columns)
    body = "\n".join(
        f"<tr><td>{_esc(label)}</td>"
        + "".join(f"<td>{_esc(metric_text(metrics.get(key), kind, currency))}</td>" for _, metrics in columns)
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


def _trades_table(trades: Sequence[TradeRecord], quote: str, base: str) -> str:
    if not trades:
        return '<section>\n<h2>Trades</h2>\n<p class="note">No trades.</p>\n</section>'
    headers = (
        "#",
        "Entry",
        "Exit",
        with_unit("Entry price", quote),
        with_unit("Exit price", quote),
        with_unit("Quantity", base),
        "P&L",
        "Fees",
        "Exit reason",
    )
    head = "".join(f"<th>{_esc(name)}</th>" for name in headers)
    rows = []
    for number, trade in enumerate(trades[:MAX_TABLE_ROWS], start=1):
        sign = "pos" if trade.pnl > 0 else "neg" if trade.pnl < 0 else ""
        cells = (
            time_text_utc(trade.entry_time),
            time_text_utc(trade.exit_time),
            price_text(trade.entry_price),
            price_text(trade.exit_price),
            f"{trade.quantity:,f}",
        )
        rows.append(
            f"<tr><td>{number:,}</td>"
            + "".join(f"<td>{_esc(cell)}</td>" for cell in cells)
            + f'<td class="{sign}">{_esc(money_text(trade.pnl, quote))}</td>'
            + f"<td>{_esc(money_text(trade.fees, quote))}</td>"
            + f"<td>{_esc(trade.exit_reason.replace('_', ' '))}</td></tr>"
        )
    note = (
        f'<p class="note">Showing the first {MAX_TABLE_ROWS:,} of {len(trades):,} trades; trades.csv has them all.</p>'
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
        f"<tr><td>{_esc(stored_time_text(gap.get('first_missing')))}</td><td>{_esc(stored_time_text(gap.get('last_missing')))}"
        f"</td><td>{_esc(count_text(gap.get('missing_bars')))}</td></tr>"
        for gap in gaps[:MAX_TABLE_ROWS]
    )
    note = (
        f'<p class="note">Showing {MAX_TABLE_ROWS:,} of {len(gaps):,} gaps.</p>' if len(gaps) > MAX_TABLE_ROWS else ""
    )
    return (
        f'<section>\n<h2>Data gaps ({len(gaps):,})</h2>\n{note}<div class="scroll">'
        "<table><thead><tr><th>First missing bar</th><th>Last missing bar</th><th>Missing bars</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody></table></div>\n</section>"
    )


def _settings_table(settings: dict[str, Any], currency: str) -> str:
    """One row per setting; a nested group (risk, params, refusals) as one row per entry, "Risk: max position pct"."""
    rows = "\n".join(
        f"<tr><td>{_esc(label)}</td><td>{_esc(value)}</td></tr>" for label, value in _setting_rows(settings, currency)
    )
    return (
        '<section>\n<h2>Settings</h2>\n<div class="scroll"><table class="settings">'
        f"<thead><tr><th>Setting</th><th>Value</th></tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>\n</section>"
    )


def _setting_rows(settings: dict[str, Any], currency: str, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in settings.items():
        label = f"{prefix}{setting_label(str(key))}"
        if isinstance(value, dict) and value:
            rows.extend(_setting_rows(value, currency, f"{label}: "))
        elif key in _MONEY_SETTINGS and not prefix:
            rows.append((label, money_setting_text(value, currency)))
        else:
            rows.append((label, setting_text(value)))
    return rows
