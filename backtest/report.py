"""Backtest outputs: trades.csv, summary.json and one self-contained HTML page.

The page works offline and from an e-mail attachment: inline CSS and inline SVG only, no script, no external
reference of any kind. It is rendered from the Jinja2 templates in backtest/templates/ (report.html, the shell with
its CSS; report_body.html, the sections, which the web app's backtest page includes too) with autoescaping on, so
every piece of text that comes from data is escaped.

The page is for people: column headers in words, times as "YYYY-MM-DD HH:MM UTC", money with its currency (the
symbol's quote currency) to the cent, or to two significant digits below a cent, and counts with thousands
separators. trades.csv and summary.json stay machine-readable: field names, ISO-8601 times, exact decimals.
Every table sits in its own horizontal scroll box and long values wrap, so the page itself fits a phone's width.

What each section shows is decided here (`report_view`); how values are written in it is in `backtest.report_text`,
the charts in `backtest.charts`.
"""

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from backtest.chart_data import baseline_label
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
from backtest.results import (
    AiUsage,
    BacktestReport,
    EquityCurve,
    TradeRecord,
    decimal_text,
    report_json,
    trade_json,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
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


@dataclass(frozen=True)
class TradeRow:
    """One trades-table row, every cell already written for people; sign is the P&L cell's class ("pos"/"neg"/"")."""

    number: str
    cells: tuple[str, ...]
    sign: str
    pnl: str
    fees: str
    reason: str


@dataclass(frozen=True)
class ReportView:
    """What the report templates show: plain text only (the templates escape it), bar `charts`, the SVG section
    from backtest.charts (already escaped; empty when a page draws its own charts)."""

    title: str
    window: str
    bars: str
    source: str
    warnings: tuple[str, ...]
    metric_columns: tuple[str, ...]
    metric_rows: tuple[tuple[str, tuple[str, ...]], ...]
    ai_line: str
    charts: Markup
    trade_headers: tuple[str, ...]
    trade_rows: tuple[TradeRow, ...]
    trade_count: str
    trades_note: str
    gap_rows: tuple[tuple[str, str, str], ...]
    gap_count: str
    gaps_note: str
    settings_rows: tuple[tuple[str, str], ...]


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


@cache
def template_environment() -> Environment:
    """The report templates' environment: autoescaped, and an undefined name fails instead of printing nothing."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: BacktestReport) -> str:
    """The whole report page as one string (templates/report.html)."""
    return template_environment().get_template("report.html").render(report=report_view(report))


def report_view(report: BacktestReport, *, with_charts: bool = True) -> ReportView:
    """The report's sections as text; with_charts=False leaves out the SVG charts (a web page draws its own)."""
    times = report.curve.times
    window = f"{time_text(times[0])} → {time_text(times[-1])} UTC" if len(times) else "empty"
    return _view(
        report,
        window,
        len(times),
        Markup(charts(report)) if with_charts else Markup(""),  # noqa: S704 - SVG escaped by backtest.charts
    )


def summary_view(summary: dict[str, Any], window: str, bars: int) -> ReportView:
    """The sections of a stored run from its summary.json (`backtest.results.report_json`), without charts; `window`
    is the window already in words, `bars` its bar count. Raises KeyError or ValueError for a malformed summary."""
    ai = summary["ai"]
    estimate = ai.get("estimated_cost_usd")
    report = BacktestReport(
        settings=dict(summary["settings"]),
        metrics=dict(summary["metrics"]),
        baselines=dict(summary["baselines"]),
        ai=AiUsage(
            int(ai["decisions"]),
            int(ai["cache_hits"]),
            int(ai["cache_misses"]),
            Decimal(ai["cost_usd"]),
            None if estimate is None else Decimal(estimate),
        ),
        trades=[_trade_of(trade) for trade in summary["trades"]],
        gaps=list(summary["gaps"]),
        warnings=list(summary["warnings"]),
        curve=EquityCurve(np.array([], "datetime64[ns]"), np.array([]), np.array([]), np.array([], bool)),
        baseline_curves={},
    )
    view = _view(report, window, bars, Markup(""))
    # The web page's labels are words; the report file keeps the baselines' keys as its charts' legends show them.
    return replace(view, metric_columns=tuple(baseline_label(name) for name in view.metric_columns))


def _trade_of(trade: dict[str, str]) -> TradeRecord:
    return TradeRecord(
        entry_time=datetime.fromisoformat(trade["entry_time"]),
        exit_time=datetime.fromisoformat(trade["exit_time"]),
        entry_price=Decimal(trade["entry_price"]),
        exit_price=Decimal(trade["exit_price"]),
        quantity=Decimal(trade["qty"]),
        pnl=Decimal(trade["pnl"]),
        fees=Decimal(trade["fees"]),
        exit_reason=trade["exit_reason"],
    )


def _view(report: BacktestReport, window: str, bars: int, chart_section: Markup) -> ReportView:
    settings = report.settings
    symbol = str(settings.get("symbol", "?"))
    timeframe = str(settings.get("timeframe", "?"))
    quote, base = quote_currency(symbol), base_currency(symbol)
    columns = [("Strategy", report.metrics), *report.baselines.items()]
    trades, gaps = report.trades, report.gaps
    return ReportView(
        title=f"Backtest {symbol} {timeframe}",
        window=window,
        bars=f"{bars:,}",
        source=str(settings.get("signal_source", "?")),
        warnings=_warnings(report),
        metric_columns=tuple(name for name, _ in columns),
        metric_rows=_metric_rows(columns, quote),
        ai_line=_ai_line(report),
        charts=chart_section,
        trade_headers=(
            "#",
            "Entry",
            "Exit",
            with_unit("Entry price", quote),
            with_unit("Exit price", quote),
            with_unit("Quantity", base),
            "P&L",
            "Fees",
            "Exit reason",
        ),
        trade_rows=tuple(_trade_row(number, trade, quote) for number, trade in enumerate(trades[:MAX_TABLE_ROWS], 1)),
        trade_count=f"{len(trades):,}",
        trades_note=(
            f"Showing the first {MAX_TABLE_ROWS:,} of {len(trades):,} trades; trades.csv has them all."
            if len(trades) > MAX_TABLE_ROWS
            else ""
        ),
        gap_rows=tuple(
            (
                stored_time_text(gap.get("first_missing")),
                stored_time_text(gap.get("last_missing")),
                count_text(gap.get("missing_bars")),
            )
            for gap in gaps[:MAX_TABLE_ROWS]
        ),
        gap_count=f"{len(gaps):,}",
        gaps_note=f"Showing {MAX_TABLE_ROWS:,} of {len(gaps):,} gaps." if len(gaps) > MAX_TABLE_ROWS else "",
        settings_rows=tuple(_setting_rows(settings, quote)),
    )


def _warnings(report: BacktestReport) -> tuple[str, ...]:
    # The gaps are among the warnings already: the runner names the longest in the window and how metrics count it.
    items = list(report.warnings)
    if not report.baselines:
        items.append("No baseline was run on this window: the result cannot be compared with buy-and-hold.")
    return tuple(items)


def _metric_rows(
    columns: Sequence[tuple[str, dict[str, float | int | None]]], currency: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    known = {key for key, _, _ in METRIC_ROWS}
    extra = sorted({key for _, metrics in columns for key in metrics} - known)
    rows = [*METRIC_ROWS, *((key, key, "raw") for key in extra)]
    return tuple(
        (label, tuple(metric_text(metrics.get(key), kind, currency) for _, metrics in columns))
        for key, label, kind in rows
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
    return " · ".join(parts)


def _trade_row(number: int, trade: TradeRecord, quote: str) -> TradeRow:
    return TradeRow(
        number=f"{number:,}",
        cells=(
            time_text_utc(trade.entry_time),
            time_text_utc(trade.exit_time),
            price_text(trade.entry_price),
            price_text(trade.exit_price),
            f"{trade.quantity:,f}",
        ),
        sign="pos" if trade.pnl > 0 else "neg" if trade.pnl < 0 else "",
        pnl=money_text(trade.pnl, quote),
        fees=money_text(trade.fees, quote),
        reason=trade.exit_reason.replace("_", " "),
    )


def _setting_rows(settings: dict[str, Any], currency: str, prefix: str = "") -> list[tuple[str, str]]:
    """(label, value) per setting; a nested group (risk, params, refusals) as one row per entry, "Risk: max position
    pct"."""
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
