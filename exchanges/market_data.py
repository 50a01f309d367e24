"""An exchange's public market data through ccxt (no API key needed): its spot markets and recent candles."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt

from exchanges.candles import Candle
from exchanges.markets import UnknownSymbolError
from exchanges.timeframes import timeframe_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Steadyhand trades spot. Clients that also load derivatives markets by default are told to load spot only
# (ccxt's binance would otherwise request the USD-M and COIN-M futures exchange info as well).
SPOT_ONLY_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}},
}


class MarketDataError(Exception):
    """Market data could not be fetched; the message names the exchange and what went wrong (never a key)."""


class UnknownExchangeIdError(MarketDataError):
    """ccxt has no exchange of that id."""


def public_exchange(
    exchange_id: str, markets: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> ccxt.Exchange:
    """A ccxt client for public data; known markets (stored or bundled) spare the markets request.

    `config`: extra ccxt constructor settings (e.g. {"rateLimit": 0}).
    """
    if exchange_id not in ccxt.exchanges:
        raise UnknownExchangeIdError(f"ccxt has no exchange {exchange_id!r}")
    exchange_class = getattr(ccxt, exchange_id)
    options = {**SPOT_ONLY_OPTIONS.get(exchange_id, {}), **(config or {}).get("options", {})}
    exchange = exchange_class({"enableRateLimit": True, "timeout": 15_000, **(config or {}), "options": options})
    if markets:
        exchange.set_markets(markets)
    return exchange


def fetch_spot_markets(exchange: ccxt.Exchange) -> dict[str, dict[str, Any]]:
    """The exchange's spot markets as a ccxt `markets` dict, fetched now and ready to store as JSON.

    Raises `MarketDataError` (one line naming the exchange) when they cannot be fetched.
    """
    try:
        markets = exchange.load_markets(reload=True)
    except ccxt.NetworkError as error:
        raise MarketDataError(f"{exchange.id} markets unavailable ({_reason(error)})") from None
    except ccxt.ExchangeError as error:
        raise MarketDataError(f"{exchange.id} refused the markets request ({_reason(error)})") from None
    return {symbol: _json_safe(market) for symbol, market in markets.items() if market.get("spot")}


def _reason(error: Exception) -> str:
    """The error's class and the first line of its message, short: ccxt repeats whole response bodies."""
    lines = str(error).strip().splitlines()
    detail = lines[0] if lines else ""
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return f"{error.__class__.__name__}: {detail}" if detail else error.__class__.__name__


def _json_safe(value: Any) -> Any:
    """Plain JSON values: NaN and infinities (which JSON cannot hold) become None."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
