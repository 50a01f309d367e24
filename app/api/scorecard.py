"""Scorecard: how each signal source's and watch's signals fared after their horizon, against buy-and-hold and the
rules baseline."""

from flask import Response, jsonify
from flask_openapi3 import Tag

from app import current_settings
from app.api import guard
from app.api.blueprint import api
from app.extensions import db_session
from app.schemas.scorecard import ScorecardOut, ScorecardQuery
from app.services import scorecard, system_clock

TAG = Tag(name="scorecard", description="whether the signals, and the AI behind them, are worth what they cost")


@api.get("/scorecard", tags=[TAG], responses={200: ScorecardOut})
@guard.requires("read")
def get_scorecard(query: ScorecardQuery) -> Response:
    """The user's BUY and SELL signals analysed on bars from `since` through `until` (UTC days, both optional),
    scored at the end of their horizon from stored closes (the replay's clock on the replay), by signal source and
    by watch: hit rate, mean move the signal's way, realized PnL of executed signals, hypothetical PnL of
    advice-only ones (a 100 quote stake, 0.1 % fee each way), AI cost, and buy-and-hold and `rules:sma_cross` over
    the same period. Signals whose horizon has not passed are `pending` and never counted. 422 when `since` is after
    `until`."""
    card = scorecard.scorecard(
        db_session(), current_settings(), guard.user_id(), query.since, query.until, system_clock
    )
    return jsonify(ScorecardOut.of(card).model_dump(mode="json"))
