"""What the landing page shows of a user's money: each account's equity (cash plus open positions at the latest
price its market gives), its PnL and change since the start, the open positions, and the latest watch runs.

Read-only and offline: prices come from the replay (its latest closed bar) or the candle store, never from the
network, so a live account's positions are valued at the last stored candle, or shown as "price unavailable".
Equity is `AccountBook.equity`, the number the risk manager decides on: one accounting path.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, Position, RunStatus, Watch, WatchRun
from app.persistence.account_book import load_book, open_positions
from app.persistence.candles import StoredSeries
from app.services import Clock, markets, system_clock
from app.services.exchanges import account_market
from app.services.positions import position_notes
from app.services.replay import replay_market
from app.services.run_history import run_summary
from exchanges.replay import ReplayMarket
from exchanges.timeframes import timeframe_duration

REPLAY = "replay"
STORED = "stored candles"


@dataclass(frozen=True)
class Quote:
    """A symbol's latest known price: the close of the bar that closed at `at` (a replay time on the replay)."""

    price: Decimal
    at: datetime
    source: str  # REPLAY or STORED
    timeframe: str

    @property
    def label(self) -> str:
        """E.g. "replay 1h close, 2024-01-16 05:00 UTC replay time"."""
        when = f"{self.at:%Y-%m-%d %H:%M} UTC"
        if self.source == REPLAY:
            return f"replay {self.timeframe} close, {when} replay time"
        return f"last stored {self.timeframe} close, {when}"


# (account, symbol) -> the latest price of the account's market, or None when there is none to be had offline.
PriceSource = Callable[[Account, str], Quote | None]


@dataclass(frozen=True)
class PositionOverview:
    position: Position
    account: Account
    base: str  # the base asset, e.g. BTC
    quantity_decimals: int  # the market's amount precision, more when the quantity held is finer (a fee in base)
    price_decimals: int
    quote: Quote | None  # None: price unavailable
    market_value: Decimal | None  # quantity x latest price, in the account's quote currency
    unrealized_pnl: Decimal | None  # market value - cost basis (buy fees included)
    notes: list[str]  # dust, fees that could not be valued, a failed exit


@dataclass(frozen=True)
class AccountOverview:
    account: Account
    market: str  # where its prices come from: "replay", "store" or "ccxt:EXCHANGE"
    equity: Decimal  # cash + open positions at the latest price (a position without one counts at its entry)
    cash: Decimal
    positions_value: Decimal  # equity - cash
    realized_pnl: Decimal  # over every position, open or closed, fees and dust write-offs included
    unrealized_pnl: Decimal  # over the open positions that have a price
    change: Decimal  # equity - starting balance
    change_pct: Decimal | None  # None when the account started with nothing (a live account)
    positions: list[PositionOverview]

    @property
    def unpriced(self) -> list[str]:
        """Symbols held without a price: counted at their entry price in the equity."""
        return [p.position.symbol for p in self.positions if p.quote is None]

    @property
    def price_sources(self) -> list[str]:
        return sorted({p.quote.source for p in self.positions if p.quote is not None})


def latest_prices(session: Session, settings: Settings, wall: Clock = system_clock) -> PriceSource:
    """The latest price of each account's market without the network: on the replay, the close of the replay's
    latest closed bar (finest timeframe); on the store, the newest stored candle of the account's exchange; on a
    ccxt market, the newest stored candle of that exchange (a live price would need the network). Answers are kept
    for the life of the source, so one page asks once per market and symbol."""
    known: dict[tuple[str, str, str], Quote | None] = {}
    replay: list[ReplayMarket | None] = []
    stored: list[list[StoredSeries]] = []

    def the_replay() -> ReplayMarket | None:
        if not replay:
            try:
                replay.append(replay_market(session, settings, wall))
            except (OSError, ValueError):  # bundled candles missing or unreadable: no replay prices
                replay.append(None)
        return replay[0]

    def coverage() -> list[StoredSeries]:
        if not stored:
            stored.append(markets.coverage(session))
        return stored[0]

    def quote(account: Account, symbol: str) -> Quote | None:
        market = account_market(account, settings.scheduler.market)
        exchange_id = market.partition(":")[2] if market.startswith("ccxt:") else account.exchange_id
        key = (market, exchange_id, symbol)
        if key not in known:
            if market == REPLAY:
                known[key] = _replay_quote(the_replay(), symbol)
            else:
                known[key] = _stored_quote(session, coverage(), exchange_id, symbol)
        return known[key]

    return quote


def _replay_quote(market: ReplayMarket | None, symbol: str) -> Quote | None:
    if market is None or symbol not in market.symbols:
        return None
    timeframe = market.timeframes(symbol)[0]
    try:
        bar = market.latest_closed_bar(symbol, timeframe)
    except ValueError:
        return None
    return Quote(bar.close, bar.open_time + timeframe_duration(timeframe), REPLAY, timeframe)


def _stored_quote(session: Session, coverage: list[StoredSeries], exchange_id: str, symbol: str) -> Quote | None:
    series = [s for s in coverage if (s.exchange_id, s.symbol) == (exchange_id, symbol)]
    if not series:
        return None
    # The newest close; on a tie the finest timeframe (its close is the same moment's price).
    newest = max(series, key=lambda s: (s.last_close, -timeframe_duration(s.timeframe)))
    step = timeframe_duration(newest.timeframe)
    bars = markets.stored_bars(session, exchange_id, newest.timeframe)(
        symbol, newest.last_close - step, newest.last_close
    )
    if not bars:
        return None
    return Quote(bars[-1].close, newest.last_close, STORED, newest.timeframe)


def account_overviews(
    session: Session, settings: Settings, user_id: int, prices: PriceSource | None = None
) -> list[AccountOverview]:
    """The user's accounts, oldest first, each with its equity, PnL and open positions at `prices` (default:
    `latest_prices`, which asks nothing of the network)."""
    source = prices or latest_prices(session, settings)
    accounts = session.scalars(select(Account).where(Account.user_id == user_id).order_by(Account.id))
    return [_overview(session, settings, account, source) for account in accounts]


def _overview(session: Session, settings: Settings, account: Account, prices: PriceSource) -> AccountOverview:
    rows = open_positions(session, account.id)
    quotes = {row.symbol: prices(account, row.symbol) for row in rows}
    book = load_book(session, account)
    equity = book.equity({symbol: quote.price for symbol, quote in quotes.items() if quote is not None})
    held = [_position(session, settings, account, row, quotes[row.symbol]) for row in rows]
    realized = sum(session.scalars(select(Position.realized_pnl).where(Position.account_id == account.id)), Decimal(0))
    start = account.starting_balance
    change = equity - start
    return AccountOverview(
        account=account,
        market=account_market(account, settings.scheduler.market),
        equity=equity,
        cash=book.cash,
        positions_value=equity - book.cash,
        realized_pnl=realized,
        unrealized_pnl=sum((p.unrealized_pnl for p in held if p.unrealized_pnl is not None), Decimal(0)),
        change=change,
        change_pct=change / start * 100 if start > 0 else None,
        positions=held,
    )


def _position(
    session: Session, settings: Settings, account: Account, row: Position, quote: Quote | None
) -> PositionOverview:
    base = row.symbol.partition("/")[0]
    held_decimals = _decimals(row.quantity)
    quantity_decimals, price_decimals = held_decimals, 2
    try:
        rules = markets.market_rules(session, settings, account.exchange_id, row.symbol)
    except InvalidInputError:  # a market the stored or bundled markets do not list: show the quantity as held
        pass
    else:
        base = rules.base
        quantity_decimals = max(_decimals(rules.amount_step), held_decimals)
        price_decimals = _decimals(rules.price_step)
    value = row.quantity * quote.price if quote is not None else None
    return PositionOverview(
        position=row,
        account=account,
        base=base,
        quantity_decimals=min(quantity_decimals, 10),
        price_decimals=min(max(price_decimals, 2), 8),
        quote=quote,
        market_value=value,
        unrealized_pnl=value - row.cost_basis if value is not None else None,
        notes=position_notes(row, account.quote_currency),
    )


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class RunLine:
    run_id: int
    bar_time: datetime  # open time of the bar analysed (a replay time on the replay)
    symbol: str
    timeframe: str
    status: RunStatus
    outcome: str  # the signal, the risk decision and the order, or where it failed, in words
    watch_id: int
    signal_source: str  # tells two watches of one symbol and timeframe apart


def recent_runs(session: Session, user_id: int, limit: int = 10) -> list[RunLine]:
    """The latest `limit` runs across the user's watches, newest first, each with its outcome in words (the
    `run_history.run_summary` line without its head, which the columns show)."""
    rows = session.execute(
        select(WatchRun, Watch)
        .join(Watch, WatchRun.watch_id == Watch.id)
        .where(Watch.user_id == user_id)
        .order_by(WatchRun.id.desc())
        .limit(limit)
    ).all()
    lines = []
    for run, watch in rows:
        summary = run_summary(session, run.id)
        _, found, outcome = summary.partition(" UTC: ")
        lines.append(
            RunLine(
                run.id,
                run.bar_time,
                watch.symbol,
                watch.timeframe,
                run.status,
                outcome if found else summary,
                watch.id,
                watch.signal_source,
            )
        )
    return lines
