"""The signed-in landing page: accounts, watches and the market data on hand."""

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app.extensions import db
from app.models import Account, Candle, Watch

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
    return render_template("home.html", accounts=accounts, watches=watches, coverage=coverage)
