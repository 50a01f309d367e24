"""Backtest outputs: trades.csv, summary.json and one self-contained HTML page.

The page works offline and from an e-mail attachment: inline CSS and inline SVG only, no script, no external
reference of any kind. Every piece of text that comes from data is escaped.

The page is for people: column headers in words, times as "YYYY-MM-DD HH:MM UTC", money with its currency (the
symbol's quote currency) to the cent, or to two significant digits below a cent, and counts with thousands
separators. trades.csv and summary.json stay machine-readable: field names, ISO-8601 times, exact decimals.
Every table sits in its own horizontal scroll box and long values wrap, so the page itself fits a phone's width.
"""

import csv
import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from backtest.charts import charts, time_text
from backtest.results import (
    BacktestReport,
    TradeRecord,
    decimal_text,
    iso_utc,
    report_json,
    trade_json,
)

MAX_TABLE_ROWS = 200
CSV_COLUMNS = ("entry_time", "exit_time", "entry_price", "exit_price", "qty", "pnl", "fees", "exit_reason")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

# Settings whose value is money in the quote currency, and labels for the keys the runner writes; any other key
# shows as its name in words ("max_open_positions" -> "Max open positions").
_MONEY_SETTINGS = frozenset({"starting_balance"})
SETTING_LABELS = {
    "fee_rate": "Fee rate (fraction per fill)",
    "slippage_bps": "Slippage (basis points)",
    "every": "Decide every (bars)",
    "params": "Strategy parameters",
    "window_start": "First decision bar",
    "window_end": "Last bar",
    "bars": "Bars in the window",
    "risk_refusals": "Risk refusals",
    "rejected_orders": "Rejected orders",
}


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
        + "".join(f"<td>{_esc(_format_metric(metrics.get(key), kind, currency))}</td>" for _, metrics in columns)
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


def _format_metric(value: object, kind: str, currency: str = "") -> str:
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
            return money_text(value, currency)
        case "usd":
            return money_text(value, "USD")
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


def _trades_table(trades: Sequence[TradeRecord], quote: str, base: str) -> str:
    if not trades:
        return '<section>\n<h2>Trades</h2>\n<p class="note">No trades.</p>\n</section>'
    headers = (
        "#",
        "Entry",
        "Exit",
        _with_unit("Entry price", quote),
        _with_unit("Exit price", quote),
        _with_unit("Quantity", base),
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
        f"<tr><td>{_esc(_time_value(gap.get('first_missing')))}</td><td>{_esc(_time_value(gap.get('last_missing')))}"
        f"</td><td>{_esc(_count_text(gap.get('missing_bars')))}</td></tr>"
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
            rows.append((label, _money_setting(value, currency)))
        else:
            rows.append((label, _setting_text(value)))
    return rows


def setting_label(key: str) -> str:
    """A settings key in words: "max_open_positions" -> "Max open positions"."""
    return SETTING_LABELS.get(key) or key.replace("_", " ").capitalize()


def _money_setting(value: object, currency: str) -> str:
    try:
        return money_text(Decimal(str(value)), currency)
    except ArithmeticError:
        return _setting_text(value)


def _setting_text(value: object) -> str:
    match value:
        case None:
            return "none"
        case bool():
            return "yes" if value else "no"
        case int():
            return f"{value:,}"
        case dict() if not value:
            return "none"
        case list() | tuple():
            return ", ".join(_setting_text(item) for item in value) if value else "none"
        case str() if _ISO_TIME.match(value):
            return _time_value(value)
    return _plain_text(value)


def _plain_text(value: object) -> str:
    match value:
        case str():
            return value
        case Decimal():
            return decimal_text(value)
        case datetime() | np.datetime64():
            return iso_utc(value)
    return json.dumps(value, sort_keys=True, default=str)


def quote_currency(symbol: str) -> str:
    """The currency a symbol is priced in: "BTC/USDT" -> "USDT" ("" when the symbol does not say)."""
    _, slash, quote = symbol.partition("/")
    return quote.split(":")[0] if slash else ""


def base_currency(symbol: str) -> str:
    base, slash, _ = symbol.partition("/")
    return base if slash else ""


def _with_unit(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def money_text(value: float | int | Decimal, currency: str = "") -> str:
    """Money to the cent with thousands separators ("1,234.50 USDT"); a non-zero amount under a cent to two
    significant digits, so it does not read as zero ("0.0000055 USDT", "-0.0000001 USDT")."""
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if number == 0:
        number = Decimal(0)  # no "-0.00"
    if number == 0 or abs(number) >= Decimal("0.01"):
        text = f"{number:,.2f}"
    else:
        decimals = 1 - number.adjusted()
        text = f"{number:.{decimals}f}".rstrip("0")
    return f"{text} {currency}" if currency else text


def price_text(value: Decimal) -> str:
    """A price to the cent with thousands separators; under 1 to four significant digits (0.00001234)."""
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.{3 - value.adjusted()}f}"


def time_text_utc(moment: datetime | np.datetime64) -> str:
    """A time as people read it: "2021-01-01 01:00 UTC"."""
    return iso_utc(moment)[:16].replace("T", " ") + " UTC"


def _time_value(value: object) -> str:
    """A stored time (a datetime, or ISO text with an offset or "Z") as time_text_utc; anything else as it is."""
    if isinstance(value, datetime | np.datetime64):
        return time_text_utc(value)
    if isinstance(value, str) and _ISO_TIME.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return time_text_utc(moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC))
    return _plain_text(value)


def _count_text(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | np.integer) else _plain_text(value)
