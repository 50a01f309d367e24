"""The signed-in landing page: accounts, watches and the market data on hand."""

from flask import Blueprint, abort, render_template, send_file
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app import current_settings
from app.backtests import reports_dir
from app.extensions import db
from app.models import Account, Analysis, Backtest, Candle, Watch

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
@login_required
def index() -> ResponseReturnValue:
    accounts = db.session.scalars(
        select(Account).where(Account.user_id == current_user.id).order_by(Account.name)
    ).all()
    watches = db.session.scalars(
        select(Watch).where(Watch.user_id == current_user.id).order_by(Watch.symbol, Watch.timeframe)
    ).all()
    coverage = db.session.execute(
        select(
            Candle.exchange_id,
            Candle.symbol,
            Candle.timeframe,
            func.count().label("bars"),
            func.min(Candle.open_time).label("first"),
            func.max(Candle.open_time).label("last"),
        )
        .group_by(Candle.exchange_id, Candle.symbol, Candle.timeframe)
        .order_by(Candle.symbol, Candle.timeframe)
    ).all()
    analyses = db.session.scalars(
        select(Analysis).where(Analysis.user_id == current_user.id).order_by(Analysis.id.desc()).limit(10)
    ).all()
    backtests = db.session.scalars(
        select(Backtest).where(Backtest.user_id == current_user.id).order_by(Backtest.id.desc()).limit(10)
    ).all()
    return render_template(
        "home.html", accounts=accounts, watches=watches, coverage=coverage, analyses=analyses, backtests=backtests
    )


@blueprint.get("/backtests/<int:backtest_id>/report")
@login_required
def backtest_report(backtest_id: int) -> ResponseReturnValue:
    """The self-contained HTML report of one of the user's own backtests."""
    record = db.session.get(Backtest, backtest_id)
    if record is None or record.user_id != current_user.id:
        abort(404)
    report = reports_dir(current_settings(), backtest_id) / "report.html"
    if not report.is_file():
        abort(404)
    return send_file(report, mimetype="text/html")
