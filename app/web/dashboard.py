"""The dashboard (`/`): each account's equity and its curve, trading state and kill switch, open positions, the
latest signals and what became of them, AI spend against the budgets. Its live part refreshes itself (htmx)."""

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.services import dashboard, markets, overview
from app.web.common import current_settings, db_session, now, owned, user_id

blueprint = Blueprint("dashboard", __name__)

# Seconds between refreshes of the live part: the replay closes a bar every few seconds, a real market hourly.
REFRESH_REPLAY, REFRESH_LIVE = 10, 60


def _live_context() -> dict[str, object]:
    settings = current_settings()
    view = dashboard.dashboard(db_session(), settings, user_id(), now())
    refresh = REFRESH_REPLAY if settings.scheduler.market == "replay" else REFRESH_LIVE
    return {"view": view, "refresh": refresh, "runs": overview.recent_runs(db_session(), user_id())}


@blueprint.get("/")
@login_required
def index() -> ResponseReturnValue:
    return render_template("dashboard/index.html", coverage=markets.coverage(db_session()), **_live_context())


@blueprint.get("/dashboard/live")
@login_required
def live() -> ResponseReturnValue:
    """The dashboard's live part alone, for its periodic refresh."""
    return render_template("dashboard/_live.html", **_live_context())


@blueprint.get("/accounts/<id:account_id>/equity.json")
@login_required
def equity_json(account_id: int) -> ResponseReturnValue:
    """The account's equity curve in the chart protocol of static/js/charts.js: equity and the starting balance."""
    equity = owned(dashboard.account_equity, db_session(), current_settings(), user_id(), account_id)
    account, currency = equity.summary.overview.account, equity.curve.currency
    data = [{"time": int(point.at.timestamp()), "value": float(point.equity)} for point in equity.curve.points]
    series: list[dict[str, object]] = [
        {"type": "area", "name": f"Equity ({currency})", "color": "#1a62d6", "data": data}
    ]
    if data:
        start = float(account.starting_balance)
        ends = [{"time": data[0]["time"], "value": start}, {"time": data[-1]["time"], "value": start}]
        series.append({"type": "line", "name": f"Starting balance ({currency})", "color": "#8a94a6", "data": ends})
    return jsonify(
        panes=[{"title": f"Equity of {account.name}", "height": 220, "series": series}],
        empty=f"{account.name} has no fills yet: its curve starts with the first fill.",
    )
