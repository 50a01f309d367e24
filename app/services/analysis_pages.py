"""What the analysis pages show beyond `explain`: the indicators a signal source read at the analysis's bar, rebuilt
from the candles, and each listed analysis with what happened to it (risk decision, order).

The context text a model reads is not stored (see `app.services.explain`); its numbers are the indicators of the
closed candles up to the analysis's bar, which the candle store (or the replay's bundled candles) still holds, so
they are recomputed here exactly as the analysis computed them. Reads only.
"""

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ai.context_text import price_decimals
from ai.indicators import (
    ATR_LENGTH,
    EMA_LENGTHS,
    RANGE_BARS,
    RETURN_BARS,
    RSI_LENGTH,
    VOLUME_MEAN_LENGTH,
    WARMUP_BARS,
)
from app.config import Settings
from app.models import Analysis, Decision, Order
from app.services import markets
from app.services.analyses import AnalysisFilter, list_analyses
from app.services.analysis_inputs import HISTORY_BARS, indicators
from app.services.pages import Page
from app.services.replay import replay_market
from exchanges.timeframes import timeframe_duration


@dataclass(frozen=True)
class IndicatorRow:
    label: str  # for people: "EMA 50", "Close vs. EMA 50"
    value: float
    kind: str  # "price" (in the quote currency), "percent" (already x100), "number" (plain, e.g. RSI, %B)
    decimals: int  # how many decimals to show


@dataclass(frozen=True)
class IndicatorSnapshot:
    """The indicators at the analysis's bar, or why they could not be rebuilt (`rows` empty, `missing` says why)."""

    rows: list[IndicatorRow]
    source: str  # where the candles came from: "candle store", "replay", or "" when missing
    bars: int  # how many closed candles the indicators were computed from
    missing: str | None = None


@dataclass(frozen=True)
class ListedAnalysis:
    analysis: Analysis
    decision: Decision | None  # the risk decision for the analysis's account, if it had one
    order: Order | None  # the order the decision placed, if any


def indicator_snapshot(session: Session, settings: Settings, analysis: Analysis) -> IndicatorSnapshot:
    """The indicators of `analysis`'s symbol and timeframe at its bar, from the candle store, else (on the replay
    market) the replay's candles. Live-exchange candles are not fetched for a page view: such an analysis's
    indicators show only when its candles were imported into the store."""
    frame = markets.stored_candles(
        session, analysis.exchange_id, analysis.symbol, analysis.timeframe, HISTORY_BARS, analysis.bar_time
    )
    source = "candle store"
    if not _covers(frame, analysis.bar_time) and settings.scheduler.market == "replay":
        try:
            candles = replay_market(session, settings).closed_candles(
                analysis.symbol,
                analysis.timeframe,
                HISTORY_BARS,
                analysis.bar_time + timeframe_duration(analysis.timeframe),
            )
        except (ValueError, KeyError):
            candles = []
        frame, source = markets.candles_frame(candles), "replay"
    if not _covers(frame, analysis.bar_time):
        return IndicatorSnapshot(
            [],
            "",
            len(frame),
            f"the {analysis.symbol} {analysis.timeframe} candles up to {analysis.bar_time:%Y-%m-%d %H:%M} UTC are "
            f"not in the candle store ({WARMUP_BARS + 1} needed), so the indicators cannot be shown",
        )
    row = indicators(frame).iloc[-1]
    return IndicatorSnapshot(_rows(row), source, len(frame))


def _covers(frame: pd.DataFrame, bar_time: datetime) -> bool:
    return len(frame) >= WARMUP_BARS + 1 and frame.index[-1].to_pydatetime() == bar_time


def _rows(row: "pd.Series[float]") -> list[IndicatorRow]:
    close = float(row["close"])
    places = price_decimals(close, significant=6, minimum=2)

    def price(label: str, value: float) -> IndicatorRow:
        return IndicatorRow(label, float(value), "price", places)

    def pct(label: str, value: float, decimals: int = 2) -> IndicatorRow:
        return IndicatorRow(label, float(value), "percent", decimals)

    def versus(label: str, reference: float) -> IndicatorRow:
        return pct(f"Close vs. {label}", (close / float(reference) - 1) * 100)

    rows = [price("Close", close)]
    rows += [pct(f"Return over {n} bar{'s' if n > 1 else ''}", row[f"ret_{n}_pct"]) for n in RETURN_BARS]
    for n in EMA_LENGTHS:
        rows += [price(f"EMA {n}", row[f"ema{n}"]), versus(f"EMA {n}", row[f"ema{n}"])]
    rows += [
        IndicatorRow(f"RSI {RSI_LENGTH}", float(row[f"rsi{RSI_LENGTH}"]), "number", 1),
        price("MACD", row["macd"]),
        price("MACD signal", row["macd_signal"]),
        price("MACD histogram", row["macd_hist"]),
        price("Bollinger lower band", row["bb_lower"]),
        price("Bollinger middle band", row["bb_mid"]),
        price("Bollinger upper band", row["bb_upper"]),
        IndicatorRow("Bollinger %B", float(row["bb_pct_b"]), "number", 2),
        pct("Bollinger width", row["bb_width_pct"]),
        price(f"ATR {ATR_LENGTH}", row[f"atr{ATR_LENGTH}"]),
        pct(f"ATR {ATR_LENGTH} as part of the close", 100 * float(row[f"atr{ATR_LENGTH}"]) / close),
        IndicatorRow(
            f"Volume vs. its {VOLUME_MEAN_LENGTH}-bar mean",
            float(row[f"volume_ratio{VOLUME_MEAN_LENGTH}"]),
            "number",
            2,
        ),
        price(f"{RANGE_BARS}-bar high", row[f"high{RANGE_BARS}"]),
        versus(f"{RANGE_BARS}-bar high", row[f"high{RANGE_BARS}"]),
        price(f"{RANGE_BARS}-bar low", row[f"low{RANGE_BARS}"]),
        versus(f"{RANGE_BARS}-bar low", row[f"low{RANGE_BARS}"]),
    ]
    return rows


def analysis_page(
    session: Session, user_id: int, filters: AnalysisFilter, limit: int, before_id: int | None
) -> Page[ListedAnalysis]:
    """A page of the user's analyses, newest first (see `analyses.list_analyses`, whose `InvalidInputError` for a
    bad status it raises), each with its first risk decision and that decision's order."""
    page = list_analyses(session, user_id, filters, limit, before_id)
    ids = [analysis.id for analysis in page.items]
    decisions: dict[int, Decision] = {}
    orders: dict[int, Order] = {}
    if ids:
        for decision in session.scalars(select(Decision).where(Decision.analysis_id.in_(ids)).order_by(Decision.id)):
            decisions.setdefault(decision.analysis_id, decision)
        decision_ids = [decision.id for decision in decisions.values()]
        if decision_ids:
            query = select(Order).where(Order.decision_id.in_(decision_ids)).order_by(Order.id)
            for order in session.scalars(query):
                assert order.decision_id is not None  # selected by it
                orders.setdefault(order.decision_id, order)
    return Page(
        [
            ListedAnalysis(
                analysis,
                decisions.get(analysis.id),
                orders.get(decisions[analysis.id].id) if analysis.id in decisions else None,
            )
            for analysis in page.items
        ],
        page.next_before_id,
    )
