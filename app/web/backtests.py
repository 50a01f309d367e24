"""Backtests: a form that previews a run's AI cost before it is queued, the run's progress while a worker runs it,
its results (metrics beside the baselines, charts, trades; the report's own sections), the list of past runs, and
delete. Through the same services as the REST API and the CLI (`services.backtests`, `services.backtest_setup`,
`services.backtest_results`)."""

from flask import Blueprint, flash, make_response, redirect, render_template, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import ServiceError
from app.services import backtests
from app.services.backtest_results import BacktestResults, backtest_results, chart_file, window_text
from app.services.backtest_setup import BacktestPreview, preview_backtest
from app.web.backtest_forms import BacktestForm
from app.web.common import current_settings, db_session, owned, show_error, user_id
from app.web.security import REPORT_POLICY, talisman

blueprint = Blueprint("backtests", __name__, url_prefix="/backtests")

RECENT_RUNS = 50
POLL_SECONDS = 2  # the progress fragment asks again this often while the run is queued or running


def _index(form: BacktestForm, preview: BacktestPreview | None = None, status: int = 200) -> ResponseReturnValue:
    runs = backtests.list_backtests(db_session(), user_id(), RECENT_RUNS)
    return render_template(
        "backtests/index.html", form=form, preview=preview, runs=runs, window_text=window_text
    ), status


@blueprint.get("")
@login_required
def index() -> ResponseReturnValue:
    return _index(BacktestForm())


@blueprint.post("/estimate")
@login_required
def estimate() -> ResponseReturnValue:
    """Step one: what the run would do and cost; the page then offers Run with the same values."""
    form = BacktestForm()
    if not form.validate_on_submit():
        return _index(form, status=400)
    session = db_session()
    try:
        preview = preview_backtest(session, current_settings(), form.to_request(user_id(), use_estimate=False))
    except ServiceError as error:
        show_error(form, error)
        return _index(form, status=400)
    finally:
        # The preview writes nothing; end its read transaction.
        session.rollback()
    form.estimate.data = str(preview.estimated_cost_usd) if preview.paid and preview.estimated_cost_usd else ""
    return _index(form, preview)


@blueprint.post("")
@login_required
def create() -> ResponseReturnValue:
    """Step two: queue the run for a worker (a paid one may spend at most the typed limit, else the estimate)."""
    form = BacktestForm()
    if not form.validate_on_submit():
        return _index(form, status=400)
    session = db_session()
    try:
        record = backtests.create_backtest(session, current_settings(), form.to_request(user_id(), use_estimate=True))
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return _index(form, status=400)
    session.commit()
    flash(f"Backtest #{record.id} {record.symbol} {record.timeframe} with {record.signal_source} queued.", "info")
    return redirect(url_for("backtests.detail", backtest_id=record.id))


def _results(backtest_id: int) -> BacktestResults:
    return owned(backtest_results, db_session(), current_settings(), user_id(), backtest_id)


@blueprint.get("/<id:backtest_id>")
@login_required
def detail(backtest_id: int) -> ResponseReturnValue:
    results = _results(backtest_id)
    return render_template("backtests/detail.html", results=results, window_text=window_text, poll=POLL_SECONDS)


@blueprint.get("/<id:backtest_id>/progress")
@login_required
def progress(backtest_id: int) -> ResponseReturnValue:
    """The progress fragment the detail page polls; once the run is finished the page reloads to show results."""
    results = _results(backtest_id)
    response = make_response(render_template("backtests/_progress.html", results=results, poll=POLL_SECONDS))
    if results.finished:
        response.headers["HX-Refresh"] = "true"
    return response


@blueprint.get("/<id:backtest_id>/chart.json")
@login_required
def chart_json(backtest_id: int) -> ResponseReturnValue:
    """Equity, drawdown and price with entries and exits, in static/js/charts.js's protocol."""
    path = owned(chart_file, db_session(), current_settings(), user_id(), backtest_id)
    return send_file(path, mimetype="application/json", max_age=0)


@blueprint.get("/<id:backtest_id>/report", endpoint="report")
@login_required
@talisman(content_security_policy=REPORT_POLICY)
def report(backtest_id: int) -> ResponseReturnValue:
    """The self-contained HTML report file (inline CSS and SVG, no script): its own, stricter policy."""
    path = owned(backtests.report_file, db_session(), current_settings(), user_id(), backtest_id)
    return send_file(path, mimetype="text/html", max_age=0)


@blueprint.post("/<id:backtest_id>/delete")
@login_required
def delete(backtest_id: int) -> ResponseReturnValue:
    session = db_session()
    owned(backtests.get_backtest, session, user_id(), backtest_id)
    try:
        backtests.delete_backtest(session, current_settings(), user_id(), backtest_id)
    except ServiceError as error:
        session.rollback()
        flash(error.message[:1].upper() + error.message[1:] + ".", "error")
        return redirect(url_for("backtests.detail", backtest_id=backtest_id))
    session.commit()
    flash(f"Backtest #{backtest_id} deleted.", "info")
    return redirect(url_for("backtests.index"))
