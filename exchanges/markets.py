"""Market rules (precision, minimums, fees) read from a ccxt `markets` dict."""

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any


class UnknownSymbolError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class MarketRules:
    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    taker_fee: Decimal
    maker_fee: Decimal


def _decimal(value: Any) -> Decimal:
    # str() first: Decimal(0.1) would carry the float's binary noise into every rounding.
    return Decimal(str(value)) if value is not None else Decimal(0)


def market_rules_from_ccxt(market: dict[str, Any]) -> MarketRules:
    """Build rules from one ccxt market entry (precision mode TICK_SIZE, as ccxt 4.x uses for Binance)."""
    limits = market.get("limits", {})
    return MarketRules(
        symbol=market["symbol"],
        base=market["base"],
        quote=market["quote"],
        amount_step=_decimal(market["precision"]["amount"]),
        price_step=_decimal(market["precision"]["price"]),
        min_amount=_decimal(limits.get("amount", {}).get("min")),
        min_notional=_decimal(limits.get("cost", {}).get("min")),
        taker_fee=_decimal(market.get("taker")),
        maker_fee=_decimal(market.get("maker")),
    )


class MarketCatalog:
    """The markets one exchange offers, looked up by unified symbol (e.g. BTC/USDT)."""

    def __init__(
        self, exchange_id: str, rules: dict[str, MarketRules], raw_markets: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.exchange_id = exchange_id
        self.raw_markets = raw_markets or {}  # the ccxt markets dict, when the catalog came from one
        self._rules = rules

    @classmethod
    def from_ccxt(cls, exchange_id: str, markets: dict[str, dict[str, Any]]) -> "MarketCatalog":
        return cls(exchange_id, {symbol: market_rules_from_ccxt(m) for symbol, m in markets.items()}, markets)

    @classmethod
    def from_snapshot(cls, exchange_id: str, path: Path) -> "MarketCatalog":
        with path.open(encoding="utf-8") as handle:
            return cls.from_ccxt(exchange_id, json.load(handle))

    @property
    def symbols(self) -> list[str]:
        return sorted(self._rules)

    def rules(self, symbol: str) -> MarketRules:
        try:
            return self._rules[symbol]
        except KeyError:
            # A fetched catalog holds thousands of markets: those are counted, not listed.
            known = f"known: {', '.join(self.symbols)}" if len(self._rules) <= 10 else f"{len(self._rules):,} markets"
            raise UnknownSymbolError(f"unknown symbol {symbol!r} on {self.exchange_id} ({known})") from None
