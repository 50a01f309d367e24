"""The scorecard (`/scorecard`): for each signal source and each watch, how its signals fared after their horizon,
what its trades earned after fees, what the AI cost, beside buy-and-hold and the rules baseline
(`app.services.scorecard`). A UTC day window from the query string (`since`, `until`)."""

from datetime import datetime
from decimal import Decimal

from flask import Blueprint, Response, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import InvalidInputError
from app.services import orders, scorecard
from app.services.scorecard import BASELINE_SOURCE, USD_LIKE, Scorecard
from app.web.common import current_settings, db_session, user_id

blueprint = Blueprint("scorecard", __name__)


@blueprint.get("/scorecard")
@login_required
def index() -> ResponseReturnValue:
    typed = {name: request.args.get(name, "")[:40] for name in ("since", "until")}
    context = {
        "typed": typed,
        "typed_args": {name: value for name, value in typed.items() if value},
        "baseline_source": BASELINE_SOURCE,
        "usd_like": sorted(USD_LIKE),
    }
    try:
        since, until = orders.parse_day("since", typed["since"]), orders.parse_day("until", typed["until"])
        card = scorecard.scorecard(db_session(), current_settings(), user_id(), since, until)
    except InvalidInputError as error:
        return render_template("scorecard/index.html", error=error.message, card=None, **context), 400
    return render_template("scorecard/index.html", card=card, error=None, **context)


@blueprint.get("/scorecard/chart.json")
@login_required
def chart_json() -> Response:
    """One pane (charts.js protocol): per source, the running hypothetical PnL of following every scored signal
    with the standard stake, beside buy-and-hold of the most signalled series; time unix s (horizon ends, closes),
    value in the quote currency per stake. A bad period is a 400 (the page says why)."""
    try:
        since = orders.parse_day("since", request.args.get("since", "")[:40])
        until = orders.parse_day("until", request.args.get("until", "")[:40])
        card = scorecard.scorecard(db_session(), current_settings(), user_id(), since, until)
    except InvalidInputError:
        abort(400)
    return jsonify(_chart(card))


def _chart(card: Scorecard) -> dict[str, object]:
    def line(name: str, points: list[tuple[datetime, Decimal]], color: str | None = None) -> dict[str, object]:
        data = [{"time": int(moment.timestamp()), "value": float(value)} for moment, value in points]
        series: dict[str, object] = {"type": "line", "name": name, "data": data}
        if color:
            series["color"] = color
        series["price_format"] = {"precision": 2, "min_move": 0.01}
        return series

    series = [line(f"{source}: every signal followed", points) for source, points in card.curves.items()]
    if card.hold is not None and card.hold[1]:
        series.append(line(f"buy and hold {card.hold[0]}", card.hold[1], "#475467"))
    title = f"Cumulative PnL per {card.stake:,.0f} staked per signal, after a {card.fee_rate * 100:.1f}% fee each way"
    return {"panes": [{"title": title, "height": 280, "series": series}]}
