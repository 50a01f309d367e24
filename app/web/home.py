"""The signed-in landing page: accounts (equity, PnL, open positions), watches and their latest runs, analyses,
backtests and the market data on hand."""

from flask import Blueprint, abort, render_template, send_file
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app import current_settings
from app.errors import NotFoundError
from app.extensions import db_session
from app.services import analyses, backtests, markets, overview, replay, watches

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
@login_required
def index() -> ResponseReturnValue:
    user_id = current_user.id
    settings = current_settings()
    return render_template(
        "home.html",
        accounts=overview.account_overviews(db_session(), settings, user_id),
        runs=overview.recent_runs(db_session(), user_id),
        watches=watches.watch_views(db_session(), user_id),
        coverage=markets.coverage(db_session()),
        analyses=analyses.recent_analyses(db_session(), user_id),
        backtests=backtests.list_backtests(db_session(), user_id, limit=10),
        market=settings.scheduler.market,
        replay_speed=settings.scheduler.replay_speed,
        replay=replay.replay_status(db_session(), settings) if settings.scheduler.market == "replay" else None,
    )


@blueprint.get("/backtests/<int:backtest_id>/report")
@login_required
def backtest_report(backtest_id: int) -> ResponseReturnValue:
    """The self-contained HTML report of one of the user's own backtests."""
    try:
        path = backtests.report_file(db_session(), current_settings(), current_user.id, backtest_id)
    except NotFoundError:
        abort(404)
    return send_file(path, mimetype="text/html")
