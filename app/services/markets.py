"""Markets and candles: which symbols an exchange lists (and its rules), refreshing them from the exchange, the
candle store's coverage, importing candle files, and closed candles for an analysis from the store or an exchange's
public market data."""

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError, ServiceError
from app.persistence import candles as candle_store
from app.persistence import markets as market_store
from app.persistence.candles import ImportReport as ImportReport  # re-exported: what import_candle_file returns
from app.persistence.candles import StoredSeries
from app.persistence.markets import StoredMarketsInfo, UnknownExchangeError, bundled_catalog, bundled_snapshot_date
from app.services import Clock, system_clock
from app.services.upkeep import BarSource
from exchanges.candles import Candle, CandleFileError, read_candle_csv
from exchanges.markets import MarketCatalog, MarketRules, UnknownSymbolError
from exchanges.timeframes import TIMEFRAME_SECONDS, UnknownTimeframeError, timeframe_duration

# The context's higher-timeframe lines come from this timeframe when the store has it.
HIGHER_TIMEFRAME = {"15m": "4h", "30m": "4h", "1h": "1d", "2h": "1d", "4h": "1d", "6h": "1w", "12h": "1w", "1d": "1w"}
# Stored markets younger than this are taken as the exchange's list: a symbol missing from them is not its market.
MARKETS_FRESH_FOR = timedelta(days=7)
# An unknown-symbol message lists the known symbols when there are at most this many.
LISTED_SYMBOLS = 10
REFRESH_HINT = "markets refresh"


class MarketDataUnavailableError(ServiceError):
    """An exchange's public market data could not be fetched (network, exchange refusal)."""

    code = "MARKET_DATA_UNAVAILABLE"
    http_status = 503


@dataclass(frozen=True)
class KnownMarkets:
    """The markets of one exchange that Steadyhand uses, and where they come from: the markets last fetched from
    the exchange (`fetched_at`) or, when none were, the bundled snapshot (`snapshot_date`)."""

    exchange_id: str
    catalog: MarketCatalog
    fetched_at: datetime | None = None
    snapshot_date: date | None = None

    @property
    def bundled(self) -> bool:
        return self.fetched_at is None

    @property
    def source(self) -> str:
        """Where the markets come from, for messages: "bundled snapshot of 2025-01-01", "fetched ... UTC"."""
        if self.fetched_at is not None:
            return f"fetched {self.fetched_at:%Y-%m-%d %H:%M} UTC"
        return f"bundled snapshot of {self.snapshot_date:%Y-%m-%d}" if self.snapshot_date else "bundled snapshot"

    def fresh(self, now: datetime) -> bool:
        return self.fetched_at is not None and now - self.fetched_at < MARKETS_FRESH_FOR


def known_markets(session: Session, settings: Settings, exchange_id: str) -> KnownMarkets:
    """The stored markets of `exchange_id`, else its bundled snapshot. Raises `InvalidInputError` (field
    `exchange`) for an exchange with neither."""
    stored = market_store.stored_catalog(session, exchange_id)
    if stored is not None:
        return KnownMarkets(exchange_id, stored.catalog, fetched_at=stored.fetched_at)
    try:
        bundled = bundled_catalog(settings.data_dir, exchange_id)
    except UnknownExchangeError as error:
        hint = f": fetch them first ({REFRESH_HINT})" if _ccxt_knows(exchange_id) else ""
        raise InvalidInputError(
            f"{error}; no markets stored for it either{hint}", field="exchange", details={"value": exchange_id}
        ) from None
    return KnownMarkets(exchange_id, bundled, snapshot_date=bundled_snapshot_date(settings.data_dir, exchange_id))


def list_markets(
    session: Session, settings: Settings, exchange_id: str, base: str | None = None, quote: str | None = None
) -> tuple[KnownMarkets, list[MarketRules]]:
    """The known markets of `exchange_id` (see `known_markets`) and the rules of each, by symbol; only those of
    asset `base` and quoted in `quote` when given (case-insensitive). Raises `InvalidInputError` (field
    `exchange`) for an exchange with no markets stored or bundled."""
    known = known_markets(session, settings, exchange_id)
    rules = [known.catalog.rules(symbol) for symbol in known.catalog.symbols]
    return known, [
        market
        for market in rules
        if (base is None or market.base.upper() == base.upper())
        and (quote is None or market.quote.upper() == quote.upper())
    ]


def catalog(session: Session, settings: Settings, exchange_id: str) -> MarketCatalog:
    """The markets of `exchange_id`: the stored ones, else the bundled snapshot. Raises `InvalidInputError` (field
    `exchange`) for an exchange with neither."""
    return known_markets(session, settings, exchange_id).catalog


def market_rules(
    session: Session, settings: Settings, exchange_id: str, symbol: str, now: datetime | None = None
) -> MarketRules:
    """The rules of one market. Raises `InvalidInputError` (field `symbol` or `exchange`) saying whether the symbol
    is missing from markets that may be out of date (the bundled snapshot, or markets fetched before `now` minus
    `MARKETS_FRESH_FOR`), and how to refresh them, or is not a market of that exchange at all."""
    known = known_markets(session, settings, exchange_id)
    try:
        return known.catalog.rules(symbol)
    except UnknownSymbolError:
        raise InvalidInputError(
            unknown_symbol_message(known, symbol, now or system_clock()),
            field="symbol",
            details={"value": symbol, "markets": known.source},
        ) from None


def unknown_symbol_message(known: KnownMarkets, symbol: str, now: datetime) -> str:
    symbols = known.catalog.symbols
    exchange = known.exchange_id
    if len(symbols) <= LISTED_SYMBOLS:
        listed = f"{len(symbols)} market(s): {', '.join(symbols)}" if symbols else "no markets"
    else:
        listed = f"{len(symbols):,} markets"
    close = difflib.get_close_matches(symbol, symbols, n=1, cutoff=0.8)
    did_you_mean = f"; did you mean {close[0]}?" if close and len(symbols) > LISTED_SYMBOLS else ""
    if known.fresh(now):
        return (
            f"unknown symbol {symbol!r} on {exchange}: not a market of {exchange} "
            f"({known.source}, {listed}){did_you_mean}"
        )
    return (
        f"unknown symbol {symbol!r} on {exchange}: not in the stored {exchange} markets ({known.source}, {listed}); "
        f"if {exchange} lists it, refresh them ({REFRESH_HINT}){did_you_mean}"
    )


def raw_markets(session: Session, settings: Settings, exchange_id: str) -> dict[str, Any] | None:
    """The ccxt markets dict of the stored (else bundled) markets, for a ccxt client; None when there are neither
    (the client then loads them itself)."""
    try:
        return known_markets(session, settings, exchange_id).catalog.raw_markets
    except InvalidInputError:
        return None


def stored_markets(session: Session) -> list[StoredMarketsInfo]:
    """Every exchange with stored markets: when they were fetched and how many there are."""
    return market_store.stored_markets_info(session)


@dataclass(frozen=True)
class MarketsRefresh:
    exchange_id: str
    fetched_at: datetime
    market_count: int
    previous: str  # where the markets used before came from ("bundled snapshot of ...", "fetched ...", "none")
    added: list[str]  # symbols the previous markets did not have
    removed: list[str]  # symbols the exchange no longer lists


def refresh_markets(
    session: Session, settings: Settings, exchange_id: str, clock: Clock = system_clock
) -> MarketsRefresh:
    """Load the spot markets of `exchange_id` through ccxt's public API (no key) and store them with the time they
    were fetched, replacing the stored ones. The caller commits.

    Raises `InvalidInputError` (field `exchange`) for an exchange ccxt does not know, and
    `MarketDataUnavailableError` when the markets cannot be fetched; the stored markets are then left as they were.
    """
    # ccxt takes about a second to import: only the commands that talk to an exchange pay for it.
    from exchanges.market_data import MarketDataError, UnknownExchangeIdError, fetch_spot_markets, public_exchange

    exchange_id = exchange_id.strip().lower()
    try:
        exchange = public_exchange(exchange_id)
    except UnknownExchangeIdError:
        raise InvalidInputError(
            f'exchange must be an exchange id ccxt knows (e.g. binance, kraken, coinbase), got "{exchange_id}"',
            field="exchange",
            details={"value": exchange_id},
        ) from None
    try:
        previous: KnownMarkets | None = known_markets(session, settings, exchange_id)
    except InvalidInputError:
        previous = None
    try:
        markets = fetch_spot_markets(exchange)
    except MarketDataError as error:
        raise MarketDataUnavailableError(str(error), details={"exchange": exchange_id}) from None
    fetched_at = clock()
    market_store.store_catalog(session, exchange_id, markets, fetched_at)
    before = set(previous.catalog.symbols) if previous else set()
    return MarketsRefresh(
        exchange_id=exchange_id,
        fetched_at=fetched_at,
        market_count=len(markets),
        previous=f"{previous.source}, {len(before):,} markets" if previous else "none",
        added=sorted(set(markets) - before),
        removed=sorted(before - set(markets)),
    )


def _ccxt_knows(exchange_id: str) -> bool:
    import ccxt  # about a second to import: paid only on this error path

    return exchange_id in ccxt.exchanges


def check_timeframe(timeframe: str) -> None:
    """Raises `InvalidInputError` (field `timeframe`) for a timeframe ccxt does not know."""
    try:
        timeframe_duration(timeframe)
    except UnknownTimeframeError:
        raise InvalidInputError(
            f'timeframe must be one of {" ".join(TIMEFRAME_SECONDS)}, got "{timeframe}"',
            field="timeframe",
            details={"value": timeframe},
        ) from None


def coverage(session: Session) -> list[StoredSeries]:
    """Every stored candle series with its span."""
    return candle_store.coverage(session)


@dataclass(frozen=True)
class SeriesCoverage:
    """A stored candle series' span and how complete it is."""

    series: StoredSeries  # exchange, symbol, timeframe, bars, first and last bar open times (UTC)
    expected_bars: int  # bars from the first to the last open time if none were missing

    @property
    def missing_bars(self) -> int:
        """Bars missing between the first and the last stored one (gaps inside the span; none before or after)."""
        return max(self.expected_bars - self.series.bars, 0)


def series_coverage(
    session: Session, exchange_id: str | None = None, symbol: str | None = None, timeframe: str | None = None
) -> list[SeriesCoverage]:
    """Every stored candle series (of `exchange_id`, `symbol`, `timeframe` when given) with its span and the number
    of bars missing inside it, by exchange, symbol and timeframe."""
    found = []
    for series in candle_store.coverage(session):
        wanted = (exchange_id, series.exchange_id), (symbol, series.symbol), (timeframe, series.timeframe)
        if any(asked is not None and asked != value for asked, value in wanted):
            continue
        expected = int((series.last - series.first) / timeframe_duration(series.timeframe)) + 1
        found.append(SeriesCoverage(series, expected))
    return sorted(found, key=lambda c: (c.series.exchange_id, c.series.symbol, c.series.timeframe))


def stored_series(session: Session, exchange_id: str, symbol: str, timeframe: str) -> StoredSeries | None:
    return candle_store.stored_series(session, exchange_id, symbol, timeframe)


@dataclass(frozen=True)
class CandleFileImport:
    path: Path
    exchange_id: str
    symbol: str
    timeframe: str


def import_candle_file(
    session: Session, settings: Settings, request: CandleFileImport, clock: Clock = system_clock
) -> ImportReport:
    """Import an OHLCV CSV into the candle store: the whole file or nothing. The caller commits.

    Candles that have not closed at `clock()` (open time + timeframe later, e.g. the current hour still forming)
    are left out; the report counts them (`unclosed_dropped`).

    Raises `InvalidInputError` for an unknown exchange, symbol or timeframe, a file that cannot be read or holds
    a bad row (the message names the line), or a file without a single closed candle.
    """
    market_rules(session, settings, request.exchange_id, request.symbol)
    check_timeframe(request.timeframe)
    try:
        candles = read_candle_csv(request.path, request.timeframe)
    except CandleFileError as error:
        raise InvalidInputError(str(error), field="file") from None
    now = clock()
    step = timeframe_duration(request.timeframe)
    closed = [candle for candle in candles if candle.open_time + step <= now]
    if not closed:
        raise InvalidInputError(
            f"{request.path}: none of its {len(candles)} candle(s) has closed yet at {now:%Y-%m-%d %H:%M} UTC "
            f"(the first opens {candles[0].open_time:%Y-%m-%d %H:%M} UTC)",
            field="file",
        )
    report = candle_store.import_candles(session, request.exchange_id, request.symbol, request.timeframe, closed)
    return replace(report, rows_read=len(candles), unclosed_dropped=len(candles) - len(closed), checked_at=now)


def stored_candles(
    session: Session, exchange_id: str, symbol: str, timeframe: str, limit: int, until: datetime | None = None
) -> pd.DataFrame:
    return candle_store.stored_candles(session, exchange_id, symbol, timeframe, limit, until)


def stored_bars(session: Session, exchange_id: str, timeframe: str) -> BarSource:
    """The candle store as upkeep's bar source: `(symbol, after, until)` -> the stored candles of `timeframe` whose
    close time is in (after, until], oldest first."""
    duration = timeframe_duration(timeframe)

    def bars(symbol: str, after: datetime, until: datetime) -> list[Candle]:
        return candle_store.candles_between(session, exchange_id, symbol, timeframe, after - duration, until - duration)

    return bars


def exchange_bars(
    session: Session, settings: Settings, exchange_id: str, timeframe: str, now: datetime, max_bars: int = 1000
) -> BarSource:
    """An exchange's public candles as upkeep's bar source, like `stored_bars`; at most the last `max_bars` closed
    candles are fetched (ccxt's usual page size), so a walk over a longer absence starts `max_bars` bars back."""
    return latest_candle_bars(
        lambda symbol, limit: _closed_exchange_candles(session, settings, exchange_id, symbol, timeframe, limit, now),
        timeframe,
        max_bars,
    )


def latest_candle_bars(latest: Callable[[str, int], list[Candle]], timeframe: str, max_bars: int = 1000) -> BarSource:
    """Upkeep's bar source over a fetch of the latest closed candles, `latest(symbol, limit)`: `(symbol, after,
    until)` -> the candles of `timeframe` whose close is in (after, until], from at most the last `max_bars`."""
    duration = timeframe_duration(timeframe)

    def bars(symbol: str, after: datetime, until: datetime) -> list[Candle]:
        wanted = min(max_bars, max(1, int((until - after) / duration)))
        return [candle for candle in latest(symbol, wanted + 1) if after < candle.open_time + duration <= until]

    return bars


def stored_range(session: Session, exchange_id: str, symbol: str, timeframe: str) -> pd.DataFrame:
    return candle_store.stored_range(session, exchange_id, symbol, timeframe)


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    return candle_store.candles_frame(candles)


def exchange_candles(
    session: Session, settings: Settings, exchange_id: str, symbol: str, timeframe: str, limit: int, now: datetime
) -> pd.DataFrame:
    """The last `limit` closed candles from an exchange's public market data (ccxt, no key), as a float frame.
    The stored (else bundled) markets spare the markets request.

    Raises `MarketDataUnavailableError` when the exchange cannot be reached or refuses, `InvalidInputError` for a
    symbol it does not list.
    """
    return candles_frame(_closed_exchange_candles(session, settings, exchange_id, symbol, timeframe, limit, now))


def _closed_exchange_candles(
    session: Session, settings: Settings, exchange_id: str, symbol: str, timeframe: str, limit: int, now: datetime
) -> list[Candle]:
    # ccxt takes about a second to import: only the commands that fetch live data pay for it.
    from exchanges.market_data import MarketDataError, fetch_closed_candles, public_exchange

    markets = raw_markets(session, settings, exchange_id)
    try:
        return fetch_closed_candles(public_exchange(exchange_id, markets), symbol, timeframe, limit, now)
    except UnknownSymbolError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": symbol}) from None
    except MarketDataError as error:
        raise MarketDataUnavailableError(str(error)) from None
