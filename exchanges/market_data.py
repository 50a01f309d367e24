"""Recent candles from an exchange's public market data through ccxt (no API key needed)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt

from exchanges.candles import Candle
from exchanges.markets import UnknownSymbolError
from exchanges.timeframes import timeframe_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MarketDataError(Exception):
    """Candles could not be fetched; the message names the exchange and what went wrong (never a key)."""


def public_exchange(exchange_id: str, markets: dict[str, Any] | None = None) -> ccxt.Exchange:
    """A ccxt client for public data; a bundled markets snapshot spares the markets request."""
    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None or not isinstance(exchange_class, type):
        raise MarketDataError(f"ccxt has no exchange {exchange_id!r}")
    exchange = exchange_class({"enableRateLimit": True, "timeout": 15_000})
    if markets:
        exchange.set_markets(markets)
    return exchange


def fetch_closed_candles(
    exchange: ccxt.Exchange, symbol: str, timeframe: str, limit: int, now: datetime
) -> list[Candle]:
    """The last `limit` candles that have closed by `now` (the still-forming candle is left out)."""
    step = timeframe_duration(timeframe)
    try:
        rows = exchange.fetch_ohlcv(symbol, timeframe, limit=limit + 1)
    except ccxt.BadSymbol:
        raise UnknownSymbolError(f"unknown symbol {symbol!r} on {exchange.id}") from None
    except ccxt.NetworkError as error:
        raise MarketDataError(f"{exchange.id} market data unavailable ({error.__class__.__name__})") from None
    except ccxt.ExchangeError as error:
        raise MarketDataError(f"{exchange.id} refused the candles request ({error.__class__.__name__})") from None
    candles = [
        Candle(
            open_time=_EPOCH + timedelta(milliseconds=int(row[0])),
            open=Decimal(str(row[1])),
            high=Decimal(str(row[2])),
            low=Decimal(str(row[3])),
            close=Decimal(str(row[4])),
            volume=Decimal(str(row[5])),
        )
        for row in rows
    ]
    closed = [candle for candle in candles if candle.open_time + step <= now]
    return closed[-limit:]
