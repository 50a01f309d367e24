"""The scorecard: for each signal source and each watch of a user, how its BUY and SELL signals fared by the end of
their horizon, what the trades they led to earned after fees, what the AI cost, and the same period's buy-and-hold
and rules baseline beside it, so a user can see whether a paid model is worth what it costs.

The arithmetic (and its formulas) is in `app.services.scorecard_math`; this module reads the signals, trades and
prices. Prices are stored closes: the replay's candles up to the replay's clock on the replay market, else the
candle store (never the network). Read-only.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, Analysis, Decision, Order, Position, PositionStatus, Trade, Watch
from app.services import Clock, markets, system_clock
from app.services.replay import replay_bars, replay_market
from app.services.scorecard_math import (
    STANDARD_FEE_RATE,
    STANDARD_STAKE,
    Outcome,
    OutcomeStatus,
    SignalPoint,
    Tally,
    buy_and_hold_pnl,
    change_pct,
    cumulative_pnl,
    hold_curve,
    outcome,
    tally,
)
from exchanges.orders import OrderSide
from exchanges.replay import ReplayMarket
from exchanges.timeframes import timeframe_duration

BASELINE_SOURCE = "rules:sma_cross"  # the offline rules strategy every AI source is measured against
# Quote currencies counted 1:1 against the AI cost in USD; for any other the net after AI cost is not given.
USD_LIKE = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI"})


@dataclass(frozen=True)
class Baseline:
    """Buy-and-hold of the row's symbols over the row's period (an equal-weight mean over its symbols)."""

    start: datetime  # the first resolved signal's reference close
    end: datetime  # the last resolved signal's horizon end
    change_pct: Decimal  # price change, fees left out
    pnl: Decimal  # per standard stake, after the standard fee both ways


@dataclass(frozen=True)
class ScoreRow:
    kind: str  # "source" or "watch"
    source: str  # the signal source, e.g. deepseek:deepseek-chat or rules:sma_cross
    watch_id: int | None  # the watch (kind "watch"); None for a source row
    label: str  # e.g. "#3 BTC/USDT 1h" or the source
    symbols: list[str]
    signals: Tally
    executed: int  # signals that led to a filled order
    traded_pnl: Decimal  # realized PnL (fees and dust included) of the closed positions its signals opened
    traded_fees: Decimal  # the fees those positions paid (valued in the quote currency)
    open_positions: int  # positions its signals opened that are still open: their PnL is not in traded_pnl yet
    quote_currency: str | None  # the currency of the PnL amounts; None when the row mixes several
    ai_cost_usd: Decimal  # every analysis of the row in the window, HOLD and failed ones included
    analyses: int  # how many analyses that cost covers
    net_after_ai: Decimal | None  # traded + hypothetical PnL - AI cost; None unless the quote is USD-like
    buy_and_hold: Baseline | None  # None without resolved signals
    rules: Tally | None  # BASELINE_SOURCE's signals given on the same series within that period; None: none


@dataclass(frozen=True)
class Scorecard:
    now: datetime  # the time the horizons are measured against (the replay's clock on the replay)
    replay: bool  # whether `now` is a replay time
    since: date | None
    until: date | None
    fee_rate: Decimal
    stake: Decimal
    by_source: list[ScoreRow]
    by_watch: list[ScoreRow]
    pending: int  # signals of the window whose horizon has not passed
    # Per source, the running sum of every resolved signal's hypothetical PnL at its horizon end (per stake).
    curves: dict[str, list[tuple[datetime, Decimal]]]
    # Buy-and-hold of the most signalled series ("BTC/USDT 1h") over the same span, per stake, at each close.
    hold: tuple[str, list[tuple[datetime, Decimal]]] | None


def window(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """The bar-time window [since 00:00, until + 1 day 00:00) in UTC; `InvalidInputError` (field `since`) when it
    is empty."""
    if since is not None and until is not None and since > until:
        raise InvalidInputError(f"since {since.isoformat()} is after until {until.isoformat()}", field="since")
    start = datetime.combine(since, time(), tzinfo=UTC) if since else None
    end = datetime.combine(until, time(), tzinfo=UTC) + timedelta(days=1) if until else None
    return start, end


def scorecard(
    session: Session,
    settings: Settings,
    user_id: int,
    since: date | None = None,
    until: date | None = None,
    wall: Clock = system_clock,
) -> Scorecard:
    """The user's scorecard over the signals analysed on bars from `since` through `until` (UTC days, both
    optional). Rows by source (most signals first) and by watch (by id). Raises `InvalidInputError` for an empty
    window."""
    start, end = window(since, until)
    rows = _analyses(session, user_id, start, end)
    points = [_point(row) for row in rows if _action(row) in ("BUY", "SELL")]
    replay = _replay(session, settings, wall)
    prices, clocks = _prices(session, points, replay, wall)
    outcomes = [
        outcome(
            p,
            prices.get(_key(p), {}).get(p.reference_time),
            prices.get(_key(p), {}).get(p.horizon_end),
            clocks[_key(p)],
        )
        for p in points
    ]
    by_id = {row.id: row for row in rows}
    executed, opened = _executions(session, user_id)
    positions = _positions(session, {pid for ids in opened.values() for pid in ids})
    costs = _costs(session, user_id, start, end)
    watches = {w.id: w for w in session.scalars(select(Watch).where(Watch.user_id == user_id))}
    baseline = [
        o
        for o in outcomes
        if o.point.analysis_id in by_id and by_id[o.point.analysis_id].signal_source == BASELINE_SOURCE
    ]

    def row_of(
        kind: str, source: str, watch_id: int | None, label: str, mine: list[Outcome], cost: tuple[Decimal, int]
    ) -> ScoreRow:
        ids = {o.point.analysis_id for o in mine}
        held = [positions[pid] for aid in ids for pid in opened.get(aid, ()) if pid in positions]
        closed = [p for p, _ in held if p.status is PositionStatus.CLOSED]
        quotes = {quote for _, quote in held} or {_quote(o.point.symbol) for o in mine}
        quote = quotes.pop() if len(quotes) == 1 else None
        counted = tally(mine, executed & ids)
        traded = sum((p.realized_pnl for p in closed), Decimal(0))
        net = traded + counted.hypothetical_pnl - cost[0] if quote in USD_LIKE else None
        hold = _buy_and_hold(mine, prices)
        rules = _rules_baseline(mine, baseline, hold)
        return ScoreRow(
            kind=kind,
            source=source,
            watch_id=watch_id,
            label=label,
            symbols=sorted({o.point.symbol for o in mine}),
            signals=counted,
            executed=len(executed & ids),
            traded_pnl=traded,
            traded_fees=sum((p.fees_paid for p in closed), Decimal(0)),
            open_positions=len(held) - len(closed),
            quote_currency=quote,
            ai_cost_usd=cost[0],
            analyses=cost[1],
            net_after_ai=net,
            buy_and_hold=hold,
            rules=rules,
        )

    per_source: dict[str, list[Outcome]] = defaultdict(list)
    per_watch: dict[int, list[Outcome]] = defaultdict(list)
    for item in outcomes:
        row = by_id[item.point.analysis_id]
        per_source[row.signal_source].append(item)
        if row.watch_id is not None:
            per_watch[row.watch_id].append(item)
    source_costs: dict[str, tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
    watch_costs: dict[int, tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
    for source, watch_id, cost, count in costs:
        total, n = source_costs[source]
        source_costs[source] = (total + cost, n + count)
        if watch_id is not None:
            total, n = watch_costs[watch_id]
            watch_costs[watch_id] = (total + cost, n + count)
    sources = sorted(set(per_source) | set(source_costs), key=lambda s: (-len(per_source.get(s, [])), s))
    by_source = [row_of("source", s, None, s, per_source.get(s, []), source_costs[s]) for s in sources]
    by_watch = []
    for watch_id in sorted(set(per_watch) | set(watch_costs)):
        watch = watches.get(watch_id)
        if watch is None:
            continue
        label = f"#{watch.id} {watch.symbol} {watch.timeframe}"
        by_watch.append(
            row_of("watch", watch.signal_source, watch_id, label, per_watch.get(watch_id, []), watch_costs[watch_id])
        )
    now = replay.clock.now() if replay is not None else wall()
    curves = {source: curve for source in sources if (curve := cumulative_pnl(per_source.get(source, [])))}
    return Scorecard(
        now=now,
        replay=replay is not None,
        since=since,
        until=until,
        fee_rate=STANDARD_FEE_RATE,
        stake=STANDARD_STAKE,
        by_source=by_source,
        by_watch=by_watch,
        pending=sum(o.status is OutcomeStatus.PENDING for o in outcomes),
        curves=curves,
        hold=_hold(outcomes, prices),
    )


def _hold(
    outcomes: list[Outcome], prices: dict[tuple[str, str, str], dict[datetime, Decimal]]
) -> tuple[str, list[tuple[datetime, Decimal]]] | None:
    resolved = [o for o in outcomes if o.status is OutcomeStatus.RESOLVED]
    if not resolved:
        return None
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for item in resolved:
        counts[_key(item.point)] += 1
    key = max(counts, key=lambda k: (counts[k], k))
    start = min(o.point.reference_time for o in resolved)
    end = max(o.point.horizon_end for o in resolved)
    return f"{key[1]} {key[2]}", hold_curve(prices.get(key, {}), start, end)


def _analyses(session: Session, user_id: int, start: datetime | None, end: datetime | None) -> list[Analysis]:
    query = select(Analysis).where(Analysis.user_id == user_id, Analysis.signal.is_not(None))
    if start is not None:
        query = query.where(Analysis.bar_time >= start)
    if end is not None:
        query = query.where(Analysis.bar_time < end)
    return list(session.scalars(query.order_by(Analysis.bar_time, Analysis.id)))


def _action(row: Analysis) -> str | None:
    signal = row.signal or {}
    action = signal.get("action")
    return action if isinstance(action, str) and row.status.value == "ok" else None


def _point(row: Analysis) -> SignalPoint:
    assert row.signal is not None
    return SignalPoint(
        analysis_id=row.id,
        action=str(row.signal["action"]),
        exchange_id=row.exchange_id,
        symbol=row.symbol,
        timeframe=row.timeframe,
        bar_time=_aware(row.bar_time),
        horizon_bars=max(int(row.signal.get("horizon_bars") or 1), 1),
    )


def _key(point: SignalPoint) -> tuple[str, str, str]:
    return (point.exchange_id, point.symbol, point.timeframe)


def _quote(symbol: str) -> str:
    return symbol.partition("/")[2] or symbol


def _replay(session: Session, settings: Settings, wall: Clock) -> ReplayMarket | None:
    if settings.scheduler.market != "replay":
        return None
    try:
        return replay_market(session, settings, wall)
    except (OSError, ValueError):  # bundled candles missing or unreadable: fall back to the store
        return None


def _prices(
    session: Session, points: list[SignalPoint], replay: ReplayMarket | None, wall: Clock
) -> tuple[dict[tuple[str, str, str], dict[datetime, Decimal]], dict[tuple[str, str, str], datetime]]:
    """Closes by close time for every series the signals need, and the time each series' horizons are measured
    against: the replay's clock for a series the replay plays, else the wall clock (the store)."""
    spans: dict[tuple[str, str, str], tuple[datetime, datetime]] = {}
    for point in points:
        first, last = spans.get(_key(point), (point.bar_time, point.horizon_end))
        spans[_key(point)] = (min(first, point.bar_time), max(last, point.horizon_end))
    closes: dict[tuple[str, str, str], dict[datetime, Decimal]] = {}
    clocks: dict[tuple[str, str, str], datetime] = {}
    wall_now = wall()
    for key, (first, last) in spans.items():
        exchange_id, symbol, timeframe = key
        if replay is not None and symbol in replay.symbols and timeframe in replay.timeframes(symbol):
            now = replay.clock.now()
            bars = replay_bars(replay, timeframe, now)(symbol, first, min(last, now)) if first < now else []
        else:
            now = wall_now
            bars = markets.stored_bars(session, exchange_id, timeframe)(symbol, first, last)
        step = timeframe_duration(timeframe)
        closes[key] = {_aware(bar.open_time) + step: bar.close for bar in bars}
        clocks[key] = now
    return closes, clocks


def _executions(session: Session, user_id: int) -> tuple[set[int], dict[int, list[int]]]:
    """The user's analyses whose decision's order filled, and for each the positions its BUY fills opened (a
    position belongs to the analysis of its first fill, so a later SELL signal does not count its PnL twice)."""
    rows = session.execute(
        select(Decision.analysis_id, Trade.id, Trade.position_id, Trade.side)
        .join(Order, Order.decision_id == Decision.id)
        .join(Trade, Trade.order_id == Order.id)
        .join(Analysis, Analysis.id == Decision.analysis_id)
        .where(Analysis.user_id == user_id)
    ).all()
    executed = {analysis_id for analysis_id, _, _, _ in rows}
    position_ids = {pid for _, _, pid, side in rows if pid is not None and side is OrderSide.BUY}
    first_fill: dict[int, int] = {}
    if position_ids:
        first_fill = dict(
            session.execute(  # type: ignore[arg-type]
                select(Trade.position_id, func.min(Trade.id))
                .where(Trade.position_id.in_(position_ids))
                .group_by(Trade.position_id)
            ).all()
        )
    opened: dict[int, list[int]] = defaultdict(list)
    for analysis_id, trade_id, position_id, side in rows:
        if position_id is not None and side is OrderSide.BUY and first_fill.get(position_id) == trade_id:
            opened[analysis_id].append(position_id)
    return executed, opened


def _positions(session: Session, ids: set[int]) -> dict[int, tuple[Position, str]]:
    if not ids:
        return {}
    rows = session.execute(
        select(Position, Account.quote_currency)
        .join(Account, Account.id == Position.account_id)
        .where(Position.id.in_(ids))
    ).all()
    return {position.id: (position, quote) for position, quote in rows}


def _costs(
    session: Session, user_id: int, start: datetime | None, end: datetime | None
) -> list[tuple[str, int | None, Decimal, int]]:
    """(source, watch id, AI cost in USD, analyses) of every analysis in the window, HOLD and failed ones too."""
    query = select(Analysis.signal_source, Analysis.watch_id, func.sum(Analysis.cost_usd), func.count()).where(
        Analysis.user_id == user_id
    )
    if start is not None:
        query = query.where(Analysis.bar_time >= start)
    if end is not None:
        query = query.where(Analysis.bar_time < end)
    rows = session.execute(query.group_by(Analysis.signal_source, Analysis.watch_id)).all()
    return [(source, watch_id, Decimal(cost or 0), int(count)) for source, watch_id, cost, count in rows]


def _buy_and_hold(mine: list[Outcome], prices: dict[tuple[str, str, str], dict[datetime, Decimal]]) -> Baseline | None:
    resolved = [o for o in mine if o.status is OutcomeStatus.RESOLVED]
    if not resolved:
        return None
    start = min(o.point.reference_time for o in resolved)
    end = max(o.point.horizon_end for o in resolved)
    changes, pnls = [], []
    for key in sorted({_key(o.point) for o in resolved}):
        series = prices.get(key, {})
        inside = sorted(moment for moment in series if start <= moment <= end)
        if len(inside) < 2:
            continue
        first, last = series[inside[0]], series[inside[-1]]
        changes.append(change_pct(first, last))
        pnls.append(buy_and_hold_pnl(first, last))
    if not changes:
        return None
    return Baseline(start, end, sum(changes, Decimal(0)) / len(changes), sum(pnls, Decimal(0)) / len(pnls))


def _rules_baseline(mine: list[Outcome], baseline: list[Outcome], hold: Baseline | None) -> Tally | None:
    """`BASELINE_SOURCE`'s signals on the row's series given within the row's buy-and-hold period (their reference
    close in it; each scored at its own horizon, which may end later)."""
    if hold is None:
        return None
    series = {_key(o.point) for o in mine}
    same = [o for o in baseline if _key(o.point) in series and hold.start <= o.point.reference_time <= hold.end]
    return tally(same) if same else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
