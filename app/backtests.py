"""Backtests as records: set one up from a request, run it (in the foreground or a background thread) with
progress, persist its results, and write its report files. The engine itself is Flask-free in `backtest/`."""

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flask import Flask
from sqlalchemy.orm import Session

from ai.actions import Action
from ai.budget import BudgetCaps, BudgetScope
from ai.cache import CachedResponse
from ai.context import WARMUP_BARS, AccountFacts, ContextOptions, IndicatorTable, build_context, compute_indicators
from ai.models import default_model, model_info
from ai.pricing import estimate_tokens, price_table
from ai.prompts import PROMPT_VERSION, SYSTEM_PROMPT
from ai.rules import parse_params
from ai.signal import SCHEMA_VERSION, Signal
from ai.sources import SourceSpec, parse_chain
from app.ai_storage import SqlResponseCache
from app.candle_store import market_catalog
from app.config import Settings
from app.extensions import db
from app.market_store import HIGHER_TIMEFRAME, candles_frame, stored_range
from app.models import Backtest, BacktestJournal, BacktestStatus, User
from app.signal_services import signal_services
from backtest.engine import BacktestSettings
from backtest.report import write_html, write_summary_json, write_trades_csv
from backtest.results import AiUsage, BacktestReport, report_json
from backtest.runner import contamination_warning, run_backtest, settings_dict
from backtest.sources import BarSignalSource, JournalSource, LlmSource, RulesSource
from exchanges.candles import find_gaps, read_candle_csv
from exchanges.markets import MarketRules
from risk import RiskConfig

log = logging.getLogger(__name__)
# A typical answer is ~130 tokens (benchmarks/tokens_per_decision.py); the estimate allows for more.
EXPECTED_OUTPUT_TOKENS = 200
PROGRESS_WRITE_STEP = 0.05


class BacktestInputError(ValueError):
    pass


@dataclass(frozen=True)
class BacktestRequest:
    user_id: int
    symbol: str
    timeframe: str
    signals: str
    params: dict[str, str] = field(default_factory=dict)
    exchange_id: str = "binance"
    data_file: str | None = None
    start: str | None = None  # ISO dates, UTC
    end: str | None = None
    every: int = 1
    fee_rate: str = "0.001"
    slippage_bps: str = "0"
    balance: str = "100"
    risk: dict[str, Any] = field(default_factory=dict)
    cache_only: bool = False
    max_cost: str | None = None
    blind: bool | None = None  # default: on for AI sources


def create_backtest(session: Session, request: BacktestRequest) -> Backtest:
    """Record a queued backtest; `run_stored_backtest` (CLI or background thread) runs it."""
    record = Backtest(
        user_id=request.user_id,
        exchange_id=request.exchange_id,
        symbol=request.symbol,
        timeframe=request.timeframe,
        signal_source=request.signals,
        signal_params=dict(request.params),
        settings={"request": asdict(request)},
        status=BacktestStatus.QUEUED,
    )
    session.add(record)
    session.commit()
    return record


def start_in_background(app: Flask, backtest_id: int) -> threading.Thread:
    """Run a queued backtest in a thread with its own session; progress and results land on its record."""

    def work() -> None:
        with app.app_context():
            try:
                run_stored_backtest(db.session, app.extensions["steadyhand.settings"], backtest_id)
            finally:
                db.session.remove()

    thread = threading.Thread(target=work, name=f"backtest-{backtest_id}", daemon=True)
    thread.start()
    return thread


def reports_dir(settings: Settings, backtest_id: int) -> Path:
    return settings.instance_path / "reports" / f"backtest-{backtest_id}"


def run_stored_backtest(
    session: Session,
    settings: Settings,
    backtest_id: int,
    on_progress: Callable[[float], None] | None = None,
    before_run: Callable[[dict], None] | None = None,
) -> tuple[Backtest, BacktestReport | None]:
    record = session.get(Backtest, backtest_id)
    request = BacktestRequest(**record.settings["request"])
    record.status, record.started_at, record.progress = BacktestStatus.RUNNING, datetime.now(UTC), 0.0
    session.commit()
    try:
        setup = _prepare(session, settings, request)
        if before_run is not None:
            before_run(setup.preview)
        written = [0.0]

        def progress(fraction: float) -> None:
            if on_progress is not None:
                on_progress(fraction)
            if fraction - written[0] >= PROGRESS_WRITE_STEP:
                written[0] = fraction
                session.execute(
                    db.update(Backtest).where(Backtest.id == backtest_id).values(progress=min(fraction, 1.0))
                )
                session.commit()

        report = run_backtest(
            setup.candles,
            setup.market,
            setup.engine_settings,
            setup.source,
            setup.first_decision,
            described=setup.described,
            ai_usage=setup.ai_usage,
            warnings=setup.warnings,
            progress=progress,
        )
    except Exception as error:
        session.rollback()
        record = session.get(Backtest, backtest_id)
        record.status, record.error_message, record.finished_at = BacktestStatus.FAILED, str(error), datetime.now(UTC)
        session.commit()
        if isinstance(error, ValueError):
            return record, None
        log.exception("backtest failed", extra={"backtest_id": backtest_id})
        raise
    record = session.get(Backtest, backtest_id)
    summary = report_json(report)
    record.status, record.progress, record.finished_at = BacktestStatus.SUCCEEDED, 1.0, datetime.now(UTC)
    record.window_start = _utc(report.curve.times[0])
    record.window_end = _utc(report.curve.times[-1])
    record.metrics, record.baselines = summary["metrics"], summary["baselines"]
    record.ai_cost_usd = report.ai.cost_usd
    record.ai_cache_hits, record.ai_cache_misses = report.ai.cache_hits, report.ai.cache_misses
    record.settings = {**record.settings, "run": summary["settings"], "warnings": report.warnings}
    if setup.after_success is not None:
        setup.after_success(session)
    session.commit()
    folder = reports_dir(settings, backtest_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_html(report, folder / "report.html")
    write_trades_csv(report.trades, folder / "trades.csv")
    write_summary_json(report, folder / "summary.json")
    return record, report


@dataclass
class _Setup:
    candles: pd.DataFrame
    market: MarketRules
    engine_settings: BacktestSettings
    source: BarSignalSource
    first_decision: int
    described: dict
    ai_usage: Callable[[], AiUsage]
    warnings: list[str]
    preview: dict  # shown before a run starts: window, decisions, cost estimate
    after_success: Callable[[Session], None] | None = None


def _prepare(session: Session, settings: Settings, request: BacktestRequest) -> _Setup:
    chain = parse_chain(request.signals)
    if len(chain) != 1:
        raise BacktestInputError("a backtest takes one signal source, not a fallback chain")
    spec = chain[0]
    if spec.kind == "rules" and request.cache_only:
        raise BacktestInputError("--cache-only applies to AI signal sources")
    market = market_catalog(settings.data_dir, request.exchange_id).rules(request.symbol)
    candles = _candles(session, request)
    start, end = _day(request.start, "--start"), _day(request.end, "--end")
    if end is not None:
        candles = candles[candles.index < end + pd.Timedelta(days=1)]
    first = WARMUP_BARS
    if start is not None:
        first = max(first, int(candles.index.searchsorted(start)))
    # Only the warm-up before the first decision is needed; older history would only be iterated over.
    candles = candles.iloc[first - WARMUP_BARS :]
    first = WARMUP_BARS
    if len(candles) - first < 2:
        raise BacktestInputError(
            f"not enough candles: {len(candles)} bars, the first {WARMUP_BARS} warm the indicators up, "
            f"leaving {max(len(candles) - first, 0)} to trade on (need at least 2)"
        )
    warmup_gaps = find_gaps(list(candles.index[: first + 1].to_pydatetime()), request.timeframe)
    warnings: list[str] = []
    if warmup_gaps:
        missing = sum(gap.missing_bars for gap in warmup_gaps)
        warnings.append(
            f"the {WARMUP_BARS}-bar indicator warm-up before {candles.index[first]:%Y-%m-%d %H:%M} UTC spans "
            f"{missing:,} missing bar(s): the first decisions see indicators computed across that gap"
        )
    engine_settings = BacktestSettings(
        symbol=request.symbol,
        timeframe=request.timeframe,
        starting_balance=_decimal(request.balance, "--balance"),
        fee_rate=_decimal(request.fee_rate, "--fee-rate"),
        slippage_bps=_decimal(request.slippage_bps, "--slippage-bps"),
        every=request.every,
        risk=RiskConfig.from_overrides(request.risk),
    )
    decisions = len(range(first, len(candles) - 1, request.every))
    described = {
        **settings_dict(engine_settings),
        "signal_source": request.signals,
        "params": dict(request.params),
        "data": request.data_file or f"candle store ({request.exchange_id})",
    }
    preview = {"window": (candles.index[first].isoformat(), candles.index[-1].isoformat()), "decisions": decisions}
    if spec.kind == "rules":
        source: BarSignalSource = RulesSource(spec.strategy, parse_params(spec.strategy, request.params), candles)
        return _Setup(candles, market, engine_settings, source, first, described, _no_ai(), warnings, preview)

    if request.params:
        raise BacktestInputError("--param only applies to a rules:STRATEGY signal source")
    provider = spec.provider
    model = spec.model or default_model(provider)
    replay = SourceSpec("replay", provider=provider, model=model)
    paid = not request.cache_only and spec.kind != "replay"
    blind = True if request.blind is None else request.blind
    described["blind"] = blind
    options = ContextOptions(request.symbol, request.timeframe, blind=blind)
    higher = _higher_timeframe(session, request, candles) if not request.data_file else None
    fingerprint = _fingerprint(request, candles, provider, model, len(higher) if higher is not None else 0)
    described.update(model=model, fingerprint=fingerprint)
    warning = contamination_warning(model, model_info(provider, model).knowledge_cutoff, candles.index[-1].date())
    if warning:
        warnings.append(warning)
    journal = session.get(BacktestJournal, fingerprint)
    if journal is not None:
        answers = {int(index): Signal.model_validate(signal) for index, signal in journal.answers.items()}
        preview.update(estimated_cost_usd="0", paid=False, cached_entries=journal.decisions, journal=True)
        return _Setup(
            candles,
            market,
            engine_settings,
            JournalSource(answers, journal.decisions),
            first,
            described,
            lambda: AiUsage(journal.decisions, journal.decisions, 0, Decimal(0), None),
            warnings,
            preview,
        )

    # Only a run without a journal builds contexts, and needs the indicators for them.
    indicators = IndicatorTable.from_frame(compute_indicators(candles))
    estimate = _cost_estimate(indicators, options, provider, model, first, decisions, market)
    cache = PreloadedCache(SqlResponseCache(session.get_bind()), provider, model)
    preview.update(estimated_cost_usd=str(estimate), paid=paid, cached_entries=len(cache))
    if paid:
        if request.max_cost is None:
            raise BacktestInputError(
                f"this run may call {provider} {decisions:,} times (about ${estimate:.4f}); "
                "set --max-cost USD to allow it, or use --cache-only"
            )
        limit = _decimal(request.max_cost, "--max-cost")
        if estimate > limit:
            raise BacktestInputError(
                f"estimated AI cost ${estimate:.4f} for {decisions:,} decisions is above --max-cost ${limit:.4f}"
            )
    user = session.get(User, request.user_id)
    services = signal_services(session, settings, request.user_id)
    services.cache = cache
    caps = BudgetCaps(user_daily=user.daily_budget_usd, user_monthly=user.monthly_budget_usd)
    answered: dict[int, Signal] = {}

    def remember(index: int, signal: Signal) -> None:
        if signal.action is not Action.HOLD:
            answered[index] = signal

    source = LlmSource(
        [spec if paid else replay], indicators, higher, options, services, BudgetScope(user.id), caps, remember
    )

    def usage() -> AiUsage:
        tally = source.tally
        estimated = estimate if paid else None
        return AiUsage(tally.decisions, tally.cache_hits, tally.cache_misses, tally.cost_usd, estimated)

    def keep_journal(session: Session) -> None:
        """Only a run whose every decision was answered is worth replaying."""
        if source.tally.failures or source.tally.decisions != decisions:
            return
        session.merge(
            BacktestJournal(
                fingerprint=fingerprint,
                provider=provider,
                model=model,
                decisions=decisions,
                answers={str(index): signal.model_dump(mode="json") for index, signal in answered.items()},
                original_cost_usd=source.tally.cost_usd,
            )
        )

    return _Setup(candles, market, engine_settings, source, first, described, usage, warnings, preview, keep_journal)


class PreloadedCache:
    """The response cache for one provider and model, loaded in one query before the run, written through."""

    def __init__(self, store: SqlResponseCache, provider: str, model: str) -> None:
        self._store = store
        self._entries = store.load(provider, model, PROMPT_VERSION, SCHEMA_VERSION)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedResponse | None:
        return self._entries.get(key)

    def get_many(self, keys: Any) -> dict[str, CachedResponse]:
        return {key: self._entries[key] for key in keys if key in self._entries}

    def put(self, entry: CachedResponse) -> None:
        self._entries[entry.key] = entry
        self._store.put(entry)


def _candles(session: Session, request: BacktestRequest) -> pd.DataFrame:
    if request.data_file:
        return candles_frame(read_candle_csv(Path(request.data_file), request.timeframe))
    frame = stored_range(session, request.exchange_id, request.symbol, request.timeframe)
    if frame.empty:
        raise BacktestInputError(
            f"no {request.symbol} {request.timeframe} candles stored for {request.exchange_id}: "
            "run seed-demo or import-candles, or pass --data FILE.csv"
        )
    return frame


def _higher_timeframe(session: Session, request: BacktestRequest, candles: pd.DataFrame) -> IndicatorTable | None:
    higher = HIGHER_TIMEFRAME.get(request.timeframe)
    if higher is None:
        return None
    frame = stored_range(session, request.exchange_id, request.symbol, higher)
    frame = frame[frame.index <= candles.index[-1]]
    return IndicatorTable.from_frame(compute_indicators(frame)) if len(frame) > WARMUP_BARS else None


def _cost_estimate(
    indicators: IndicatorTable,
    options: ContextOptions,
    provider: str,
    model: str,
    first: int,
    decisions: int,
    market: Any,
) -> Decimal:
    """Decisions x (a real context's estimated input tokens x input price + a typical answer x output price)."""

    account = AccountFacts(Decimal(100), Decimal(100), market.quote, market.min_notional)
    sample = build_context(indicators, first, None, account, options).text
    input_tokens = estimate_tokens(SYSTEM_PROMPT, sample, json.dumps(Signal.tool_schema()))
    prices = price_table().worst_case_prices(provider, model)
    per_decision = (input_tokens * prices.input + EXPECTED_OUTPUT_TOKENS * prices.output) / Decimal(1_000_000)
    return per_decision * decisions


def _fingerprint(request: BacktestRequest, candles: pd.DataFrame, provider: str, model: str, higher_bars: int) -> str:
    """Every input an AI run's answers depend on; how the answers were obtained (paid, cached) is not one."""
    ignored = ("max_cost", "cache_only", "signals", "user_id")
    material = json.dumps(
        {
            "request": {k: v for k, v in asdict(request).items() if k not in ignored},
            "provider": provider,
            "model": model,
            "higher_timeframe_bars": higher_bars,
            "prompt": PROMPT_VERSION,
            "schema": SCHEMA_VERSION,
            "bars": len(candles),
            "first": str(candles.index[0]),
            "last": str(candles.index[-1]),
            "closes": float(candles["close"].sum()),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _no_ai() -> Callable[[], AiUsage]:
    return lambda: AiUsage(0, 0, 0, Decimal(0), None)


def _day(text: str | None, option: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        return pd.Timestamp(text, tz="UTC")
    except ValueError:
        raise BacktestInputError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def _decimal(text: str, option: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise BacktestInputError(f"{option} {text!r} is not a number") from None
    if not value.is_finite():
        raise BacktestInputError(f"{option} {text!r} is not a finite number")
    return value


def _utc(value: np.datetime64) -> datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()
