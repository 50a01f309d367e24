"""Watches: the user's watches with their last and next runs; add, change, pause, resume, delete and "run now", through
the same services as the REST API and the CLI (`services.watches`, `services.watch_runs`, `services.run_history`)."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import InvalidInputError, ServiceError
from app.services import accounts, run_history, watch_pages, watch_runs, watches
from app.services.watch_pages import RunOutcome
from app.web.common import before_id, current_settings, db_session, now, owned, show_error, user_id
from app.web.formatting import money
from app.web.watch_forms import BUDGET_HINT, EditWatchForm, NewWatchForm

blueprint = Blueprint("watches", __name__, url_prefix="/watches")

RUNS_PER_PAGE = 20


@blueprint.get("")
@login_required
def index() -> ResponseReturnValue:
    session = db_session()
    views = watches.watch_views(session, user_id())
    runs = [view.last_run for view in views if view.last_run is not None]
    last_runs = run_history.run_views(session, runs)
    return render_template(
        "watches/index.html",
        views=views,
        last_runs={run.run.watch_id: run for run in last_runs},
        orders=watch_pages.run_orders(session, runs),
        next_runs=watch_pages.next_runs(session, current_settings(), views),
    )


@blueprint.route("/new", methods=["GET", "POST"])
@login_required
def create() -> ResponseReturnValue:
    session = db_session()
    form = NewWatchForm()
    form.offer(accounts.list_accounts(session, user_id()))
    if not form.validate_on_submit():
        return _form_page(form, None), 400 if request.method == "POST" else 200
    try:
        view = watches.create_watch(session, current_settings(), user_id(), form.to_new_watch())
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return _form_page(form, None), 400
    watch = view.watch
    session.commit()
    flash(
        f"Watch #{watch.id} {watch.symbol} {watch.timeframe} with {watch.signal_source} added: it runs "
        f"{view.schedule}.",
        "info",
    )
    for warning in view.warnings:
        flash(warning, "warning")
    return redirect(url_for("watches.detail", watch_id=watch.id))


@blueprint.get("/<id:watch_id>")
@login_required
def detail(watch_id: int) -> ResponseReturnValue:
    session = db_session()
    view = owned(watches.get_watch, session, user_id(), watch_id)
    try:
        before = before_id(request.args.get("before"))
    except InvalidInputError:
        abort(400)
    page, orders = watch_pages.run_page(session, user_id(), watch_id, RUNS_PER_PAGE, before)
    return render_template(
        "watches/detail.html",
        view=view,
        runs=page.items,
        orders=orders,
        next_before=page.next_before_id,
        first_page=before is None,
        next_run=watch_pages.next_runs(session, current_settings(), [view])[watch_id],
    )


@blueprint.route("/<id:watch_id>/edit", methods=["GET", "POST"])
@login_required
def edit(watch_id: int) -> ResponseReturnValue:
    session = db_session()
    view = owned(watches.get_watch, session, user_id(), watch_id)
    form = EditWatchForm()
    form.offer(accounts.list_accounts(session, user_id()))
    if request.method == "GET":
        form.fill(view.watch)
    if not form.validate_on_submit():
        return _form_page(form, view), 400 if request.method == "POST" else 200
    try:
        changed = watches.change_watch(session, user_id(), watch_id, form.to_change())
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return _form_page(form, owned(watches.get_watch, session, user_id(), watch_id)), 400
    session.commit()
    flash(f"Watch #{watch_id} {changed.watch.symbol} {changed.watch.timeframe} saved.", "info")
    return redirect(url_for("watches.detail", watch_id=watch_id))


@blueprint.post("/<id:watch_id>/pause")
@login_required
def pause(watch_id: int) -> ResponseReturnValue:
    session = db_session()
    view = owned(watches.pause_watch, session, user_id(), watch_id)
    session.commit()
    flash(
        f"Watch #{watch_id} {view.watch.symbol} {view.watch.timeframe} paused: it does not run until resumed.", "info"
    )
    return redirect(_back(watch_id))


@blueprint.post("/<id:watch_id>/resume")
@login_required
def resume(watch_id: int) -> ResponseReturnValue:
    session = db_session()
    view = owned(watches.resume_watch, session, user_id(), watch_id)
    session.commit()
    flash(f"Watch #{watch_id} {view.watch.symbol} {view.watch.timeframe} resumed: it runs {view.schedule}.", "info")
    return redirect(_back(watch_id))


@blueprint.post("/<id:watch_id>/delete")
@login_required
def delete(watch_id: int) -> ResponseReturnValue:
    session = db_session()
    watch = owned(watches.delete_watch, session, user_id(), watch_id)
    label = f"Watch #{watch_id} {watch.symbol} {watch.timeframe}"
    session.commit()
    flash(f"{label} deleted with its run history; the analyses it made stay under Signals.", "info")
    return redirect(url_for("watches.index"))


@blueprint.post("/<id:watch_id>/run")
@login_required
def run_now(watch_id: int) -> ResponseReturnValue:
    """Run the watch on its market's latest closed bar, as `POST /api/v1/watches/<id>/run` does, then open what it
    made: the analysis when there is one, else the watch with the failed run."""
    session = db_session()
    owned(watches.get_watch, session, user_id(), watch_id)
    asked_at = now()
    run = owned(watch_runs.run_watch_now, session, current_settings(), user_id(), watch_id)
    outcome = watch_pages.run_outcome(session, run)
    message, category = run_message(outcome, repeated=run.created_at < asked_at)
    flash(message, category)
    if run.analysis_id is not None:
        return redirect(url_for("analyses.detail", analysis_id=run.analysis_id))
    return redirect(url_for("watches.detail", watch_id=watch_id))


def run_message(outcome: RunOutcome, repeated: bool = False) -> tuple[str, str]:
    """One sentence on what a run did, and its flash category: e.g. "Run of bar 2024-01-12 16:00 UTC: BUY
    (confidence 62), approved and filled 0.00084 BTC at 43,624.00 USDT."."""
    run, watch = outcome.run, outcome.watch
    head = f"Run of bar {run.bar_time:%Y-%m-%d %H:%M} UTC"
    if repeated:
        head += " (this bar had run already; a bar is analysed once)"
    if run.status.value == "failed" and outcome.analysis is None:
        return f"{head} failed at {run.failed_step}: {run.error_code}: {run.error_message}", "error"
    analysis = outcome.analysis
    signal = (analysis.signal if analysis is not None else None) or {}
    if analysis is None or analysis.status.value != "ok":
        why = run.error_message or (analysis.error_message if analysis else None) or run.status.value
        code = run.error_code or (analysis.error_code if analysis else None) or ""
        return f"{head}: no signal ({code}: {why}).", "error"
    text = f"{head}: {signal.get('action', '?')} (confidence {signal.get('confidence', '?')})"
    decision, order = outcome.decision, outcome.order
    base, _, quote = watch.symbol.partition("/")
    if signal.get("action") == "HOLD":
        return f"{text}: nothing to trade.", "info"
    if decision is None:
        return f"{text}, advice only: the watch has no account for the risk manager to judge it against.", "info"
    if not decision.approved:
        codes = ", ".join(str(reason.get("code")) for reason in decision.reasons)
        return f"{text}, refused by the risk manager: {codes}.", "warning"
    if order is None:
        why = "auto-execute is off" if not watch.auto_execute else "the account has traded a later bar"
        return f"{text}, approved; advice only ({why}).", "info"
    if order.filled_quantity > 0 and order.average_fill_price is not None:
        filled = f"{order.filled_quantity.normalize():f} {base}"
        return (
            f"{text}, approved and {'filled' if order.status.value == 'closed' else 'partly filled'} {filled} at "
            f"{money(order.average_fill_price, quote)}.",
            "info",
        )
    return f"{text}, approved; order {order.client_order_id} is {order.status.value}.", "info"


def _form_page(form: NewWatchForm | EditWatchForm, view: watches.WatchView | None) -> str:
    return render_template("watches/form.html", form=form, view=view, budget_hint=BUDGET_HINT)


def _back(watch_id: int) -> str:
    """Back to the page the button was on: the list or the watch."""
    target = request.form.get("next", "")
    return url_for("watches.index") if target == "index" else url_for("watches.detail", watch_id=watch_id)
