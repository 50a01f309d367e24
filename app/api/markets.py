"""Markets: the symbols an exchange lists with their trading rules, and which candles the store holds."""

from flask import Response, jsonify
from flask_openapi3 import Tag

from app import current_settings
from app.api import guard
from app.api.blueprint import api
from app.extensions import db_session
from app.schemas.markets import CoverageOut, CoverageQuery, MarketsOut, MarketsQuery, SeriesOut
from app.services import markets

TAG = Tag(name="markets", description="exchange markets and their rules; the candle store's coverage")


@api.get("/markets", tags=[TAG], responses={200: MarketsOut})
@guard.requires("read")
def list_markets(query: MarketsQuery) -> Response:
    """The markets of an exchange by symbol, with base and quote, price tick, amount step, minimum quantity and
    notional, and fees: the markets last fetched from the exchange, else the bundled snapshot (`source` says which).
    422 (field `exchange`) for an exchange with neither."""
    known, rules = markets.list_markets(db_session(), current_settings(), query.exchange, query.base, query.quote)
    return jsonify(MarketsOut.of(known, rules).model_dump(mode="json"))


@api.get("/markets/coverage", tags=[TAG], responses={200: CoverageOut})
@guard.requires("read")
def get_coverage(query: CoverageQuery) -> Response:
    """Every stored candle series (filtered by exchange, symbol or timeframe): its first and last bar, how many
    bars it holds, and how many are missing between them."""
    found = markets.series_coverage(db_session(), query.exchange, query.symbol, query.timeframe)
    return jsonify(CoverageOut(series=[SeriesOut.of(c) for c in found]).model_dump(mode="json"))
