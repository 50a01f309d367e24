"""The scorecard's arithmetic, pure: how one BUY or SELL signal fared by the end of its horizon, and the tallies of
many. No database, no clock of its own: `app.services.scorecard` feeds it prices and the time.

One signal, analysed on the bar that opened at `bar_time` (timeframe `tf`), with `horizon_bars` = h:
- reference price p0: the close of the analysed bar (the last price the signal source saw), at `bar_time + tf`;
- end price p1: the close of the h-th bar after it, at `horizon_end = bar_time + (h + 1) * tf`;
- pending while `horizon_end` is after now (the replay's clock on the replay): never counted;
- unpriced when the horizon has passed but either close is not stored: never counted either, only listed;
- direction d = +1 for BUY, -1 for SELL; move in the signal's way, in percent: `d * (p1 / p0 - 1) * 100`;
- a hit when that move is above zero (a flat price is a miss: the fees lose money on it);
- hypothetical PnL, for a signal that was advice only (no fill): a standard stake S = 100 units of the symbol's quote
  currency taken at p0 in the signal's direction and closed at p1, paying the standard fee f = 0.1 % (a spot taker
  fee) of the stake on the way in and on the way out: `S * (d * (p1 / p0 - 1) - 2 * f)`. A SELL is scored as the
  short it argues for (on spot: the loss the sale avoided, or the gain it gave up).
- buy-and-hold over a period: the same stake bought at the first reference close and sold at the last end close,
  same fees: `S * (p_last / p_first - 1 - 2 * f)`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from exchanges.timeframes import timeframe_duration

STANDARD_STAKE = Decimal(100)  # in the symbol's quote currency
STANDARD_FEE_RATE = Decimal("0.001")  # 0.1 % per side (Binance spot taker fee without discounts)
HUNDRED = Decimal(100)
# Moves and PnL are kept to 8 decimal places (a satoshi-sized unit): fixed-point sums are then exact, so a total does
# not depend on the order its signals are added in (a chart's running sum ends where the table's total does).
PLACES = Decimal("1E-8")


class OutcomeStatus(StrEnum):
    RESOLVED = "resolved"  # the horizon has passed and both closes are known: counted
    PENDING = "pending"  # the horizon has not passed yet: not counted
    UNPRICED = "unpriced"  # the horizon has passed but a close is missing from the store: not counted


@dataclass(frozen=True)
class SignalPoint:
    """One BUY or SELL signal as the scorecard sees it (times UTC, prices in the symbol's quote currency)."""

    analysis_id: int
    action: str  # BUY or SELL
    exchange_id: str
    symbol: str
    timeframe: str
    bar_time: datetime  # open time of the analysed bar
    horizon_bars: int

    @property
    def reference_time(self) -> datetime:
        """When the analysed bar closed: the time of the reference price p0."""
        return self.bar_time + timeframe_duration(self.timeframe)

    @property
    def horizon_end(self) -> datetime:
        """When the horizon's last bar closes: the time of the end price p1."""
        return self.bar_time + (self.horizon_bars + 1) * timeframe_duration(self.timeframe)

    @property
    def direction(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass(frozen=True)
class Outcome:
    point: SignalPoint
    status: OutcomeStatus
    reference_price: Decimal | None
    end_price: Decimal | None
    move_pct: Decimal | None  # in the signal's direction, percent to 8 places; None unless resolved
    hit: bool | None  # None unless resolved
    hypothetical_pnl: Decimal | None  # per stake, after the standard fee both ways, 8 places; None unless resolved


def outcome(
    point: SignalPoint,
    reference_price: Decimal | None,
    end_price: Decimal | None,
    now: datetime,
    fee_rate: Decimal = STANDARD_FEE_RATE,
    stake: Decimal = STANDARD_STAKE,
) -> Outcome:
    """How `point` fared: pending before its horizon end (whatever prices are given), unpriced without both
    closes, else resolved with its directional move, hit and hypothetical PnL (see the module's formulas)."""
    if point.horizon_end > now:
        return Outcome(point, OutcomeStatus.PENDING, reference_price, None, None, None, None)
    if reference_price is None or end_price is None or reference_price <= 0:
        return Outcome(point, OutcomeStatus.UNPRICED, reference_price, end_price, None, None, None)
    directed = point.direction * (end_price / reference_price - 1)
    move_pct = (directed * HUNDRED).quantize(PLACES)
    return Outcome(
        point,
        OutcomeStatus.RESOLVED,
        reference_price,
        end_price,
        move_pct,
        directed > 0,
        (stake * move_pct / HUNDRED - 2 * fee_rate * stake).quantize(PLACES),
    )


@dataclass(frozen=True)
class Tally:
    """Many signals' outcomes summed up. Rates and averages are over the resolved ones only."""

    buys: int  # every BUY signal, whatever its status
    sells: int
    resolved: int
    pending: int
    unpriced: int
    hits: int
    hit_rate: Decimal | None  # hits / resolved, 0 to 1; None without resolved signals
    average_move_pct: Decimal | None  # mean move in the signals' direction, percent
    hypothetical_pnl: Decimal  # sum over the resolved signals that were advice only (quote currency per stake)
    advice_resolved: int  # how many resolved signals that sum covers

    @property
    def signals(self) -> int:
        return self.buys + self.sells


def tally(outcomes: Iterable[Outcome], executed: set[int] | frozenset[int] = frozenset()) -> Tally:
    """Sum up `outcomes`; `executed` holds the analysis ids whose signal was filled (their PnL is the account's
    real one, so they add nothing to the hypothetical sum)."""
    buys = sells = resolved = pending = unpriced = hits = advice = 0
    moves = Decimal(0)
    hypothetical = Decimal(0)
    for item in outcomes:
        if item.point.action == "BUY":
            buys += 1
        else:
            sells += 1
        if item.status is OutcomeStatus.PENDING:
            pending += 1
            continue
        if item.status is OutcomeStatus.UNPRICED:
            unpriced += 1
            continue
        assert item.move_pct is not None and item.hypothetical_pnl is not None
        resolved += 1
        hits += bool(item.hit)
        moves += item.move_pct
        if item.point.analysis_id not in executed:
            advice += 1
            hypothetical += item.hypothetical_pnl
    return Tally(
        buys=buys,
        sells=sells,
        resolved=resolved,
        pending=pending,
        unpriced=unpriced,
        hits=hits,
        hit_rate=Decimal(hits) / resolved if resolved else None,
        average_move_pct=moves / resolved if resolved else None,
        hypothetical_pnl=hypothetical,
        advice_resolved=advice,
    )


def buy_and_hold_pnl(
    first_price: Decimal, last_price: Decimal, fee_rate: Decimal = STANDARD_FEE_RATE, stake: Decimal = STANDARD_STAKE
) -> Decimal:
    """The standard stake bought at `first_price` and sold at `last_price`, after the fee both ways."""
    return stake * (last_price / first_price - 1 - 2 * fee_rate)


def change_pct(first_price: Decimal, last_price: Decimal) -> Decimal:
    """The price change in percent, fees left out."""
    return (last_price / first_price - 1) * HUNDRED


def cumulative_pnl(outcomes: Iterable[Outcome]) -> list[tuple[datetime, Decimal]]:
    """The running sum of every resolved signal's hypothetical PnL (each as if traded with the standard stake), at
    its horizon end, oldest first: what following every signal would have made, per stake."""
    resolved = sorted(
        (o for o in outcomes if o.status is OutcomeStatus.RESOLVED),
        key=lambda o: (o.point.horizon_end, o.point.analysis_id),
    )
    total, points = Decimal(0), []
    for item in resolved:
        assert item.hypothetical_pnl is not None
        total += item.hypothetical_pnl
        points.append((item.point.horizon_end, total))
    return points


def hold_curve(
    closes: dict[datetime, Decimal], start: datetime, end: datetime, stake: Decimal = STANDARD_STAKE
) -> list[tuple[datetime, Decimal]]:
    """Buy-and-hold of the standard stake from the close at `start` through `end`, after the fee both ways (as if
    sold at each close), at each close in between."""
    inside = sorted(moment for moment in closes if start <= moment <= end)
    if not inside:
        return []
    first = closes[inside[0]]
    return [(moment, buy_and_hold_pnl(first, closes[moment], stake=stake)) for moment in inside]
