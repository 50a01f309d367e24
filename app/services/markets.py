"""Markets and candles: which symbols an exchange lists (and its rules), the candle store's coverage, importing
candle files, and closed candles for an analysis from the store or an exchange's public market data."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError, ServiceError
from app.persistence import candles as candle_store
from app.persistence.candles import ImportReport, StoredSeries
from app.persistence.markets import UnknownExchangeError, bundled_catalog
from exchanges.candles import Candle, CandleFileError, read_candle_csv
from exchanges.markets import MarketCatalog, MarketRules, UnknownSymbolError
from exchanges.timeframes import TIMEFRAME_SECONDS, UnknownTimeframeError, timeframe_duration

# The context's higher-timeframe lines come from this timeframe when the store has it.
HIGHER_TIMEFRAME = {"15m": "4h", "30m": "4h", "1h": "1d", "2h": "1d", "4h": "1d", "6h": "1w", "12h": "1w", "1d": "1w"}


class MarketDataUnavailableError(ServiceError):
    """An exchange's public market data could not be fetched (network, exchange refusal)."""

    code = "MARKET_DATA_UNAVAILABLE"
    http_status = 503


def catalog(settings: Settings, exchange_id: str) -> MarketCatalog:
    """The markets of `exchange_id` known offline. Raises `InvalidInputError` (field `exchange`) for an exchange
    with no stored markets."""
    try:
        return bundled_catalog(settings.data_dir, exchange_id)
    except UnknownExchangeError as error:
        raise InvalidInputError(str(error), field="exchange", details={"value": exchange_id}) from None


def market_rules(settings: Settings, exchange_id: str, symbol: str) -> MarketRules:
    """The rules of one market. Raises `InvalidInputError` (field `symbol` or `exchange`) naming what is known."""
    try:
        return catalog(settings, exchange_id).rules(symbol)
    except UnknownSymbolError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": symbol}) from None


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


def stored_series(session: Session, exchange_id: str, symbol: str, timeframe: str) -> StoredSeries | None:
    return candle_store.stored_series(session, exchange_id, symbol, timeframe)


@dataclass(frozen=True)
class CandleFileImport:
    path: Path
    exchange_id: str
    symbol: str
    timeframe: str


def import_candle_file(session: Session, settings: Settings, request: CandleFileImport) -> ImportReport:
    """Import an OHLCV CSV into the candle store: the whole file or nothing. The caller commits.

    Raises `InvalidInputError` for an unknown exchange, symbol or timeframe, or a file that cannot be read or holds
    a bad row (the message names the line).
    """
    market_rules(settings, request.exchange_id, request.symbol)
    check_timeframe(request.timeframe)
    try:
        candles = read_candle_csv(request.path, request.timeframe)
    except CandleFileError as error:
        raise InvalidInputError(str(error), field="file") from None
    return candle_store.import_candles(session, request.exchange_id, request.symbol, request.timeframe, candles)


def stored_candles(
    session: Session, exchange_id: str, symbol: str, timeframe: str, limit: int, until: datetime | None = None
) -> pd.DataFrame:
    return candle_store.stored_candles(session, exchange_id, symbol, timeframe, limit, until)


def stored_range(session: Session, exchange_id: str, symbol: str, timeframe: str) -> pd.DataFrame:
    return candle_store.stored_range(session, exchange_id, symbol, timeframe)


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    return candle_store.candles_frame(candles)


def exchange_candles(
    settings: Settings, exchange_id: str, symbol: str, timeframe: str, limit: int, now: datetime
) -> pd.DataFrame:
    """The last `limit` closed candles from an exchange's public market data (ccxt, no key), as a float frame.

    Raises `MarketDataUnavailableError` when the exchange cannot be reached or refuses, `InvalidInputError` for a
    symbol it does not list.
    """
    # ccxt takes about a second to import: only the commands that fetch live data pay for it.
    from exchanges.market_data import MarketDataError, fetch_closed_candles, public_exchange

    try:
        markets = bundled_catalog(settings.data_dir, exchange_id).raw_markets
    except UnknownExchangeError:
        markets = None
    try:
        candles = fetch_closed_candles(public_exchange(exchange_id, markets), symbol, timeframe, limit, now)
    except UnknownSymbolError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": symbol}) from None
    except MarketDataError as error:
        raise MarketDataUnavailableError(str(error)) from None
    return candles_frame(candles)
