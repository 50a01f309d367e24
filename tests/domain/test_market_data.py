"""ccxt's real request and parsing code against a recorded Binance klines response (no network)."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

from app.persistence.markets import bundled_catalog as market_catalog
from exchanges.market_data import MarketDataError, fetch_closed_candles, public_exchange
from exchanges.markets import UnknownSymbolError
from tests.conftest import PROJECT_ROOT

KLINES = json.loads((PROJECT_ROOT / "tests" / "recordings" / "binance_klines_BTCUSDT_1h.json").read_text())
KLINES_URL = re.compile(r"https://api\.binance\.com/api/v3/klines\?.*")


def binance():
    return public_exchange("binance", market_catalog(PROJECT_ROOT / "data", "binance").raw_markets)


@responses.activate
def test_closed_candles_are_parsed_into_decimals_and_the_forming_one_is_dropped():
    responses.get(KLINES_URL, json=KLINES)
    last_open = datetime.fromtimestamp(KLINES[-1][0] / 1000, UTC)
    # "now" is inside the last candle: it is still forming and must not be used.
    now = last_open.replace(minute=30)
    candles = fetch_closed_candles(binance(), "BTC/USDT", "1h", 300, now)
    assert len(candles) == 300
    assert candles[-1].open_time == datetime.fromtimestamp(KLINES[-2][0] / 1000, UTC)
    assert candles[-1].close == Decimal(KLINES[-2][4])
    assert candles[0].volume == Decimal(KLINES[-301][5])
    request = responses.calls[0].request
    assert "symbol=BTCUSDT" in request.url and "interval=1h" in request.url
    assert len(responses.calls) == 1  # the bundled markets snapshot spared the markets request


@responses.activate
def test_exchange_down_is_a_clear_error():
    responses.get(KLINES_URL, body=requests.ConnectionError("connection refused"))
    with pytest.raises(MarketDataError, match="binance market data unavailable"):
        fetch_closed_candles(binance(), "BTC/USDT", "1h", 10, datetime.now(UTC))


def test_unknown_symbol_is_named():
    with pytest.raises(UnknownSymbolError, match="DOGE/USDT"):
        fetch_closed_candles(binance(), "DOGE/USDT", "1h", 10, datetime.now(UTC))


def test_unknown_exchange_is_named():
    with pytest.raises(MarketDataError, match="ccxt has no exchange 'nosuchex'"):
        public_exchange("nosuchex")
