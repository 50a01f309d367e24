"""Prices for valuing a fee paid in a third currency (Binance's "pay fees with BNB") in the account's quote currency."""

from decimal import Decimal

from exchanges.base import Exchange, ExchangeError
from exchanges.book import FeePrice
from exchanges.markets import UnknownSymbolError


def quote_prices(exchange: Exchange, quote: str) -> FeePrice:
    """`currency -> its last price in quote` from the exchange's own FEE/QUOTE ticker (e.g. BNB/USDT), looked up
    once per currency; None when the exchange lists no such market or cannot be asked, so the fee is recorded as
    unvalued instead of guessed."""
    known: dict[str, Decimal | None] = {}

    def price(currency: str) -> Decimal | None:
        if currency not in known:
            try:
                known[currency] = exchange.fetch_ticker(f"{currency}/{quote}").last
            except (ExchangeError, UnknownSymbolError):
                known[currency] = None
        return known[currency]

    return price
