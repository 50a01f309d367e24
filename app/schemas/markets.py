"""The JSON forms of an exchange's markets (symbols and their trading rules) and of the candle store's coverage."""

from pydantic import BaseModel, Field

from app.errors import shown
from app.schemas.common import RequestModel
from app.services.markets import KnownMarkets, SeriesCoverage
from exchanges.markets import MarketRules


class MarketsQuery(RequestModel):
    exchange: str = Field("binance", min_length=2, max_length=32)
    quote: str | None = Field(None, min_length=1, max_length=16, description="only markets quoted in this, e.g. USDT")
    base: str | None = Field(None, min_length=1, max_length=16, description="only markets of this asset, e.g. BTC")


class MarketOut(BaseModel):
    symbol: str
    base: str
    quote: str
    price_tick: str = Field(description="price precision: prices are multiples of this")
    amount_step: str = Field(description="quantity precision: quantities are multiples of this")
    min_amount: str = Field(description="smallest order quantity, in the base asset (0: none)")
    min_notional: str = Field(description="smallest order value, in the quote asset (0: none)")
    taker_fee: str = Field(description="as a fraction: 0.001 is 0.1%")
    maker_fee: str

    @classmethod
    def of(cls, rules: MarketRules) -> "MarketOut":
        return cls(
            symbol=rules.symbol,
            base=rules.base,
            quote=rules.quote,
            price_tick=shown(rules.price_step),
            amount_step=shown(rules.amount_step),
            min_amount=shown(rules.min_amount),
            min_notional=shown(rules.min_notional),
            taker_fee=shown(rules.taker_fee),
            maker_fee=shown(rules.maker_fee),
        )


class MarketsOut(BaseModel):
    exchange: str
    source: str = Field(description="'fetched' from the exchange or the 'bundled' snapshot")
    fetched_at: str | None = Field(description="when they were fetched, ISO-8601 UTC")
    snapshot_date: str | None = Field(description="the bundled snapshot's date, YYYY-MM-DD")
    markets: list[MarketOut] = Field(description="by symbol")

    @classmethod
    def of(cls, known: KnownMarkets, markets: list[MarketRules]) -> "MarketsOut":
        return cls(
            exchange=known.exchange_id,
            source="bundled" if known.bundled else "fetched",
            fetched_at=None if known.fetched_at is None else known.fetched_at.isoformat(),
            snapshot_date=None if known.snapshot_date is None else known.snapshot_date.isoformat(),
            markets=[MarketOut.of(rules) for rules in markets],
        )


class CoverageQuery(RequestModel):
    exchange: str | None = Field(None, min_length=2, max_length=32)
    symbol: str | None = Field(None, min_length=3, max_length=32)
    timeframe: str | None = Field(None, min_length=2, max_length=4)


class SeriesOut(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    first_bar: str = Field(description="open time of the first stored bar, ISO-8601 UTC")
    last_bar: str = Field(description="open time of the last stored bar")
    last_close: str = Field(description="when the last stored bar closed")
    bars: int
    missing_bars: int = Field(description="bars missing between the first and the last stored one")

    @classmethod
    def of(cls, coverage: SeriesCoverage) -> "SeriesOut":
        series = coverage.series
        return cls(
            exchange=series.exchange_id,
            symbol=series.symbol,
            timeframe=series.timeframe,
            first_bar=series.first.isoformat(),
            last_bar=series.last.isoformat(),
            last_close=series.last_close.isoformat(),
            bars=series.bars,
            missing_bars=coverage.missing_bars,
        )


class CoverageOut(BaseModel):
    series: list[SeriesOut] = Field(description="by exchange, symbol and timeframe")
