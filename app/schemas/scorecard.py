"""The JSON form of the scorecard: per signal source and per watch, how the signals fared after their horizon,
beside buy-and-hold and the rules baseline (amounts as strings, each beside its currency)."""

from datetime import date

from pydantic import BaseModel, Field

from app.errors import shown
from app.schemas.common import RequestModel, optional_amount
from app.services.scorecard import Baseline, Scorecard, ScoreRow
from app.services.scorecard_math import Tally


class ScorecardQuery(RequestModel):
    since: date | None = Field(None, description="first UTC day of analysed bars counted, YYYY-MM-DD")
    until: date | None = Field(None, description="last UTC day of analysed bars counted (inclusive), YYYY-MM-DD")


class TallyOut(BaseModel):
    buys: int
    sells: int
    resolved: int = Field(description="horizon passed and both closes known: the only ones counted below")
    pending: int = Field(description="horizon not passed yet: not counted")
    unpriced: int = Field(description="horizon passed but a close is not stored: not counted")
    hits: int
    hit_rate: str | None = Field(description="hits / resolved, 0 to 1; None without resolved signals")
    average_move_pct: str | None = Field(description="mean price move in the signals' direction, percent")
    hypothetical_pnl: str = Field(description="advice-only resolved signals: per standard stake, after the fee")
    advice_resolved: int = Field(description="how many signals hypothetical_pnl covers")

    @classmethod
    def of(cls, tally: Tally) -> "TallyOut":
        return cls(
            buys=tally.buys,
            sells=tally.sells,
            resolved=tally.resolved,
            pending=tally.pending,
            unpriced=tally.unpriced,
            hits=tally.hits,
            hit_rate=optional_amount(None if tally.hit_rate is None else round(tally.hit_rate, 6)),
            average_move_pct=optional_amount(
                None if tally.average_move_pct is None else round(tally.average_move_pct, 6)
            ),
            hypothetical_pnl=shown(round(tally.hypothetical_pnl, 8)),
            advice_resolved=tally.advice_resolved,
        )


class BaselineOut(BaseModel):
    start: str = Field(description="the first resolved signal's reference close, ISO-8601")
    end: str = Field(description="the last resolved signal's horizon end, ISO-8601")
    change_pct: str = Field(description="price change over the period, fees left out (mean over the symbols)")
    pnl: str = Field(description="the standard stake bought at start and sold at end, after the fee both ways")

    @classmethod
    def of(cls, baseline: Baseline | None) -> "BaselineOut | None":
        if baseline is None:
            return None
        return cls(
            start=baseline.start.isoformat(),
            end=baseline.end.isoformat(),
            change_pct=shown(round(baseline.change_pct, 6)),
            pnl=shown(round(baseline.pnl, 8)),
        )


class ScoreRowOut(BaseModel):
    kind: str = Field(description="source or watch")
    signal_source: str
    watch_id: int | None
    label: str
    symbols: list[str]
    signals: TallyOut
    executed: int = Field(description="signals that led to a filled order")
    traded_pnl: str = Field(description="realized PnL of the closed positions its signals opened, fees included")
    traded_fees: str = Field(description="fees those positions paid, in quote_currency")
    open_positions: int = Field(description="positions its signals opened that are still open (not in traded_pnl)")
    quote_currency: str | None = Field(description="the currency of every PnL here; None when it mixes several")
    ai_cost_usd: str = Field(description="every analysis in the window, HOLD and failed ones included, USD")
    analyses: int
    net_after_ai: str | None = Field(
        description="traded_pnl + hypothetical_pnl - ai_cost_usd; None unless the quote currency is USD-like"
    )
    buy_and_hold: BaselineOut | None
    rules_baseline: TallyOut | None = Field(description="rules:sma_cross signals on the same symbols and period")

    @classmethod
    def of(cls, row: ScoreRow) -> "ScoreRowOut":
        return cls(
            kind=row.kind,
            signal_source=row.source,
            watch_id=row.watch_id,
            label=row.label,
            symbols=row.symbols,
            signals=TallyOut.of(row.signals),
            executed=row.executed,
            traded_pnl=shown(row.traded_pnl),
            traded_fees=shown(row.traded_fees),
            open_positions=row.open_positions,
            quote_currency=row.quote_currency,
            ai_cost_usd=shown(row.ai_cost_usd),
            analyses=row.analyses,
            net_after_ai=optional_amount(None if row.net_after_ai is None else round(row.net_after_ai, 8)),
            buy_and_hold=BaselineOut.of(row.buy_and_hold),
            rules_baseline=None if row.rules is None else TallyOut.of(row.rules),
        )


class ScorecardOut(BaseModel):
    now: str = Field(description="the time horizons are measured against (a replay time on the replay), ISO-8601")
    replay: bool
    since: str | None
    until: str | None
    fee_rate: str = Field(description="the standard fee per side used for hypothetical PnL and buy-and-hold")
    stake: str = Field(description="the standard stake per signal, in the symbol's quote currency")
    pending: int
    by_source: list[ScoreRowOut]
    by_watch: list[ScoreRowOut]

    @classmethod
    def of(cls, card: Scorecard) -> "ScorecardOut":
        return cls(
            now=card.now.isoformat(),
            replay=card.replay,
            since=None if card.since is None else card.since.isoformat(),
            until=None if card.until is None else card.until.isoformat(),
            fee_rate=shown(card.fee_rate),
            stake=shown(card.stake),
            pending=card.pending,
            by_source=[ScoreRowOut.of(row) for row in card.by_source],
            by_watch=[ScoreRowOut.of(row) for row in card.by_watch],
        )
