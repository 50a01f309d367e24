"""An account's equity over time, for its chart: cash plus holdings marked at each hour's close, rebuilt from the
account's fills, ending at the equity the dashboard shows now.

Rebuilt per fill: a buy takes `quantity x price` from cash, a sell adds it; a fee charged in the quote currency
comes out of cash, one charged in the base asset out of the quantity held (Binance's default on a buy), one in a
third asset (BNB) out of neither, since that balance is not tracked. Between fills the holdings are marked at the
stored 1h closes of the account's exchange (on the replay, the bundled candles are in the store too); without
stored candles a symbol is marked at its last fill price. The last point is `AccountOverview.equity`, the number
the risk manager decides on, so the curve always ends where the dashboard's figure is.
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, Trade
from app.services import markets
from app.services.lookup import owned
from exchanges.orders import OrderSide

MARK_TIMEFRAME = "1h"
MAX_POINTS = 1500  # enough for a smooth line at any screen width; longer spans are sampled evenly


@dataclass(frozen=True)
class EquityPoint:
    at: datetime  # UTC; on the replay market, replay time
    equity: Decimal  # in the account's quote currency


@dataclass(frozen=True)
class EquityCurve:
    account: Account
    currency: str
    points: list[EquityPoint]  # oldest first; empty before the account's first fill


def equity_curve(
    session: Session, user_id: int, account_id: int, now_equity: Decimal, now_at: datetime | None
) -> EquityCurve:
    """The curve of one of the user's accounts from the bar before its first fill to `now_at` (the time of the
    latest price its equity `now_equity` was valued at; None: the last fill's time). `NotFoundError` (field
    `account_id`) for an account that is missing or someone else's."""
    account = owned(session, Account, account_id, user_id)
    fills = list(
        session.scalars(select(Trade).where(Trade.account_id == account.id).order_by(Trade.executed_at, Trade.id))
    )
    if not fills:
        return EquityCurve(account, account.quote_currency, [])
    step = timedelta(hours=1)
    start = fills[0].executed_at - step
    end = max(now_at or fills[-1].executed_at, fills[-1].executed_at)
    closes = {
        symbol: _closes(session, account.exchange_id, symbol, start, end) for symbol in {fill.symbol for fill in fills}
    }
    points = [EquityPoint(start, account.starting_balance)]
    cash, held, last_price = account.starting_balance, dict[str, Decimal](), dict[str, Decimal]()
    marks = _mark_times(start + step, end, step)
    index = 0
    for mark in marks:
        while index < len(fills) and fills[index].executed_at <= mark:
            cash = _apply(fills[index], cash, held, last_price)
            index += 1
        value = cash + sum(
            (quantity * _price_at(closes[symbol], mark, last_price[symbol]) for symbol, quantity in held.items()),
            Decimal(0),
        )
        points.append(EquityPoint(mark, value))
    if now_at is not None and points[-1].at == now_at:
        points[-1] = EquityPoint(now_at, now_equity)
    else:
        points.append(EquityPoint(end, now_equity))
    return EquityCurve(account, account.quote_currency, points)


def _apply(fill: Trade, cash: Decimal, held: dict[str, Decimal], last_price: dict[str, Decimal]) -> Decimal:
    base, _, quote = fill.symbol.partition("/")
    notional = fill.quantity * fill.price
    quantity = held.get(fill.symbol, Decimal(0))
    if fill.side is OrderSide.BUY:
        cash -= notional
        quantity += fill.quantity
    else:
        cash += notional
        quantity -= fill.quantity
    if fill.fee_currency == quote:
        cash -= fill.fee
    elif fill.fee_currency == base:
        quantity -= fill.fee
    held[fill.symbol] = quantity
    last_price[fill.symbol] = fill.price
    return cash


def _closes(session: Session, exchange_id: str, symbol: str, start: datetime, end: datetime) -> "_Closes":
    bars = markets.stored_bars(session, exchange_id, MARK_TIMEFRAME)(symbol, start, end)
    step = timedelta(hours=1)
    return _Closes([bar.open_time + step for bar in bars], [bar.close for bar in bars])


@dataclass(frozen=True)
class _Closes:
    times: list[datetime]  # close times, oldest first
    prices: list[Decimal]


def _price_at(closes: _Closes, moment: datetime, fallback: Decimal) -> Decimal:
    """The close of the latest bar closed by `moment`, or `fallback` when none is stored."""
    index = bisect_right(closes.times, moment)
    return closes.prices[index - 1] if index else fallback


def _mark_times(first: datetime, last: datetime, step: timedelta) -> Sequence[datetime]:
    count = max(int((last - first) / step) + 1, 1)
    stride = max(1, -(-count // MAX_POINTS))
    return [first + step * n for n in range(0, count, stride)]
