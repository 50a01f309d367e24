"""AI usage: spend by day, model, watch and API key, the cache hit rate, today's and this month's spend against the
budgets, and the budgets themselves (editable). Amounts are USD."""

from datetime import datetime

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app.errors import ServiceError
from app.services import usage
from app.services.usage import BudgetChange, UsageReport
from app.web.common import db_session, now, show_error, user_id
from app.web.settings_forms import BudgetForm

blueprint = Blueprint("usage", __name__)

DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30


def _days() -> int:
    """The window asked in the query string; anything but a listed choice falls back to 30 days."""
    days = request.args.get("days", type=int)
    return days if days in DAY_CHOICES else DEFAULT_DAYS


def _page(form: BudgetForm, status: int = 200) -> ResponseReturnValue:
    days = _days()
    session, moment = db_session(), now()
    report = usage.usage_report(session, user_id(), days, moment)
    periods = usage.budget_status(session, current_user, moment)
    return render_template(
        "usage/index.html", form=form, report=report, periods=periods, days=days, day_choices=DAY_CHOICES
    ), status


@blueprint.get("/usage")
@login_required
def index() -> ResponseReturnValue:
    form = BudgetForm(
        data={
            "daily_budget_usd": _plain(current_user.daily_budget_usd),
            "monthly_budget_usd": _plain(current_user.monthly_budget_usd),
        }
    )
    return _page(form)


@blueprint.post("/usage/budgets")
@login_required
def change_budgets() -> ResponseReturnValue:
    form = BudgetForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    session = db_session()
    try:
        user = usage.change_budgets(
            session, user_id(), BudgetChange(form.daily_budget_usd.data or "", form.monthly_budget_usd.data or "")
        )
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return _page(form, 400)
    session.commit()
    flash(
        f"AI budgets set: {_plain(user.daily_budget_usd)} USD a day, {_plain(user.monthly_budget_usd)} USD a month.",
        "info",
    )
    return redirect(url_for("usage.index"))


@blueprint.get("/usage/chart.json")
@login_required
def chart_json() -> Response:
    """Daily spend as one histogram pane (charts.js protocol): time is the UTC day start (unix s), value USD."""
    report = usage.usage_report(db_session(), user_id(), _days(), now())
    return jsonify(_chart(report))


def _chart(report: UsageReport) -> dict[str, object]:
    points = [
        {
            "time": int(datetime.fromisoformat(spend.key).replace(tzinfo=report.since.tzinfo).timestamp()),
            "value": float(spend.spent_usd),
        }
        for spend in report.by_day
    ]
    if not any(point["value"] for point in points):
        points = []  # an all-zero histogram draws as a flat line on a -0.0006..0.0006 axis; the sentence says it
    series = {
        "type": "histogram",
        "name": "AI spend per UTC day (USD)",
        "color": "#1a62d6",
        "data": points,
        "price_format": {"precision": 4, "min_move": 0.0001},
    }
    return {
        "panes": [{"title": f"AI spend per day, last {report.days} days (USD)", "height": 260, "series": [series]}],
        "empty": f"No AI spend in the last {report.days} days: nothing to chart.",
    }


def _plain(amount: object) -> str:
    """1.5 -> "1.50", 0.0025 -> "0.0025": two decimals at least, up to four (as the budget accepts)."""
    text = f"{amount:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"
