"""Watches: a symbol analysed on every close of its timeframe within its own budgets; create, change, pause, resume,
delete, "run now", and the record of their runs."""

from flask import Response, jsonify, url_for
from flask_openapi3 import Tag

from app import current_settings
from app.api import guard
from app.api.blueprint import api
from app.api.pagination import before_id, next_cursor
from app.extensions import db_session
from app.schemas.watches import (
    RunNowOut,
    RunPage,
    RunsQuery,
    WatchChangeIn,
    WatchCreatedOut,
    WatchesQuery,
    WatchIn,
    WatchOut,
    WatchPage,
    WatchPath,
    WatchRunOut,
)
from app.services import run_history, watch_runs, watches

TAG = Tag(name="watches", description="symbols analysed on every close of their timeframe, and their runs")


@api.get("/watches", tags=[TAG], responses={200: WatchPage})
@guard.requires("read")
def list_watches(query: WatchesQuery) -> Response:
    """The user's watches, newest first, each with its latest run (`last_run`, null before the first)."""
    page = watches.watch_page(db_session(), guard.user_id(), query.limit, before_id(query.cursor))
    body = WatchPage(items=[WatchOut.of(view) for view in page.items], next_cursor=next_cursor(page))
    return jsonify(body.model_dump(mode="json"))


@api.post("/watches", tags=[TAG], responses={201: WatchCreatedOut})
@guard.requires("analyze")
def create_watch(body: WatchIn) -> Response:
    """Add a watch: `symbol` analysed by `signal_source` on every close of `timeframe`, from the next close on.

    Advice only unless `auto_execute` (needs `account_id` and the trade scope). Refused with 422 naming the field for
    an unknown symbol, timeframe or signal source, a bad rule parameter, or a market whose candles the scheduler
    cannot read; 404 for an account that is not yours; 409 when you already watch the same exchange, symbol,
    timeframe and signal source (`details.watch_id`). 201 with the watch, its `warnings` and a `Location`.
    """
    if body.auto_execute:
        guard.require_scope("trade", "auto_execute")
    view = watches.create_watch(
        db_session(), current_settings(), guard.user_id(), body.to_new_watch(guard.current_key().id)
    )
    response = jsonify(WatchCreatedOut.of(view).model_dump(mode="json"))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_watch", watch_id=view.watch.id)
    return response


@api.get("/watches/<int:watch_id>", tags=[TAG], responses={200: WatchOut})
@guard.requires("read")
def get_watch(path: WatchPath) -> Response:
    """One of your watches with its latest run; 404 for a watch that is missing or not yours."""
    view = watches.get_watch(db_session(), guard.user_id(), path.watch_id)
    return jsonify(WatchOut.of(view).model_dump(mode="json"))


@api.patch("/watches/<int:watch_id>", tags=[TAG], responses={200: WatchOut})
@guard.requires("analyze")
def change_watch(path: WatchPath, body: WatchChangeIn) -> Response:
    """Change a watch's signal source, rule parameters, account, budgets or auto-execution; fields left out stay.

    Validated as at creation (422 naming the field, 404 for an account that is not yours, 409 for a signal source
    another of your watches of that market already has). Turning `auto_execute` on, or moving an auto-executing
    watch to another account, needs the trade scope: either decides where orders go.
    """
    session, user_id = db_session(), guard.user_id()
    current = watches.get_watch(session, user_id, path.watch_id).watch
    change = body.to_change(guard.current_key().id)
    sent = body.model_fields_set
    turns_on = body.auto_execute is True and not current.auto_execute
    moves_orders = (
        "account_id" in sent
        and body.account_id != current.account_id
        and (body.auto_execute if "auto_execute" in sent else current.auto_execute)
    )
    if turns_on or moves_orders:
        guard.require_scope("trade", "auto_execute")
    view = watches.change_watch(session, user_id, path.watch_id, change)
    return jsonify(WatchOut.of(view).model_dump(mode="json"))


@api.delete("/watches/<int:watch_id>", tags=[TAG], responses={204: None})
@guard.requires("analyze")
def delete_watch(path: WatchPath) -> Response:
    """Delete a watch and its run history (the analyses it made stay, without it); 204 with no body."""
    watches.delete_watch(db_session(), guard.user_id(), path.watch_id)
    return Response(status=204)


@api.post("/watches/<int:watch_id>/pause", tags=[TAG], responses={200: WatchOut})
@guard.requires("analyze")
def pause_watch(path: WatchPath) -> Response:
    """Stop running a watch until it is resumed (pausing a paused watch changes nothing); the watch."""
    view = watches.pause_watch(db_session(), guard.user_id(), path.watch_id)
    return jsonify(WatchOut.of(view).model_dump(mode="json"))


@api.post("/watches/<int:watch_id>/resume", tags=[TAG], responses={200: WatchOut})
@guard.requires("analyze")
def resume_watch(path: WatchPath) -> Response:
    """Run a paused watch again from its next close (resuming a running watch changes nothing); the watch."""
    view = watches.resume_watch(db_session(), guard.user_id(), path.watch_id)
    return jsonify(WatchOut.of(view).model_dump(mode="json"))


@api.post("/watches/<int:watch_id>/run", tags=[TAG], responses={200: RunNowOut})
@guard.paid
@guard.requires("analyze")
def run_watch(path: WatchPath) -> Response:
    """Run a watch now on its market's latest closed bar, as the scheduler would, and answer the run.

    The watch's budgets apply. The run's `status` is succeeded or failed (then `failed_step`, `error_code` and
    `error_message` say where and why); with it come its analysis, the risk decision and `summary`, one line for a
    person. On the candle store the latest closed bar is the newest one stored.

    A bar is analysed (and paid for) once: when the latest bar has a run already, that run is answered. A watch that
    auto-executes may place an order, so running it needs the trade scope.
    """
    session, user_id = db_session(), guard.user_id()
    if watches.get_watch(session, user_id, path.watch_id).watch.auto_execute:
        guard.require_scope("trade", "running a watch that auto-executes")
    run = watch_runs.run_watch_now(session, current_settings(), user_id, path.watch_id)
    view = run_history.run_views(session, [run])[0]
    body = RunNowOut.of_run(view, run_history.run_summary(session, run.id))
    return jsonify(body.model_dump(mode="json"))


@api.get("/watches/<int:watch_id>/runs", tags=[TAG], responses={200: RunPage})
@guard.requires("read")
def list_runs(path: WatchPath, query: RunsQuery) -> Response:
    """A watch's runs, newest first, each with its status, where it failed, its signal and the risk decision."""
    page = run_history.list_runs(db_session(), guard.user_id(), path.watch_id, query.limit, before_id(query.cursor))
    body = RunPage(items=[WatchRunOut.of(view) for view in page.items], next_cursor=next_cursor(page))
    return jsonify(body.model_dump(mode="json"))
