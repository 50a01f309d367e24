"""Backtests: queue a run over stored candles (a worker runs it), follow it, read its results and HTML report."""

from flask import Response, jsonify, url_for
from flask_openapi3 import Tag

from app import current_settings
from app.api import guard
from app.api.blueprint import api
from app.api.pagination import before_id, next_cursor
from app.extensions import db_session
from app.schemas.backtests import (
    BacktestDetailOut,
    BacktestIn,
    BacktestOut,
    BacktestPage,
    BacktestPath,
    BacktestsQuery,
)
from app.services import backtests
from app.services.backtests import BacktestRequest

TAG = Tag(name="backtests", description="signal sources run over history, queued for a worker")
_HTML = {
    "description": "the report page: metrics beside the baselines, charts, every trade, the run's settings",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def _url(backtest_id: int) -> str:
    return url_for("api.get_backtest", backtest_id=backtest_id)


@api.post("/backtests", tags=[TAG], responses={202: BacktestOut})
@guard.paid
@guard.requires("analyze")
def create_backtest(body: BacktestIn) -> Response:
    """Queue a backtest: validated now, run by a worker (the scheduler's pool or a Celery worker), never here.

    Answers 202 with the queued record and `Location` to follow its progress. Every input is checked before
    anything is recorded: 422 names the field (e.g. `symbol` without stored candles, `start` after them, `risk`
    with an unknown setting, `allow_gaps` when the window spans a long hole in the data). A paid AI run whose
    estimated cost is above `max_cost_usd` (or without one) is refused with 402 `BUDGET_EXCEEDED` and the estimate.
    """
    request = BacktestRequest(
        user_id=guard.user_id(),
        symbol=body.symbol,
        timeframe=body.timeframe,
        signals=body.signal_source,
        params=dict(body.params),
        exchange_id=body.exchange,
        start=body.start.isoformat() if body.start else None,
        end=body.end.isoformat() if body.end else None,
        every=body.every,
        fee_rate=str(body.fee_rate),
        slippage_bps=str(body.slippage_bps),
        balance=str(body.balance),
        risk=dict(body.risk),
        cache_only=body.cache_only,
        max_cost=None if body.max_cost_usd is None else str(body.max_cost_usd),
        blind=body.blind,
        allow_gaps=body.allow_gaps,
        max_gap_bars=body.max_gap_bars,
        api_key_id=guard.current_key().id,
    )
    record = backtests.create_backtest(db_session(), current_settings(), request)
    response = jsonify(BacktestOut.of(record).model_dump(mode="json"))
    response.status_code = 202
    response.headers["Location"] = _url(record.id)
    return response


@api.get("/backtests", tags=[TAG], responses={200: BacktestPage})
@guard.requires("read")
def list_backtests(query: BacktestsQuery) -> Response:
    """The user's backtests, newest first, with status and progress (results: `GET /backtests/{id}`)."""
    page = backtests.backtests_page(db_session(), guard.user_id(), query.limit, before_id(query.cursor))
    body = BacktestPage(items=[BacktestOut.of(b) for b in page.items], next_cursor=next_cursor(page))
    return jsonify(body.model_dump(mode="json"))


@api.get("/backtests/<int:backtest_id>", tags=[TAG], responses={200: BacktestDetailOut})
@guard.requires("read")
def get_backtest(path: BacktestPath) -> Response:
    """One backtest: status and progress while queued or running, the reason when it failed, and once it
    succeeded its results: metrics beside the baselines, AI usage and cost, every trade, gaps and warnings."""
    view = backtests.view_backtest(db_session(), current_settings(), guard.user_id(), path.backtest_id)
    report_url = url_for("api.get_backtest_report", backtest_id=path.backtest_id)
    return jsonify(BacktestDetailOut.of_view(view, report_url).model_dump(mode="json"))


@api.get("/backtests/<int:backtest_id>/report", tags=[TAG], responses={200: _HTML})
@guard.requires("read")
def get_backtest_report(path: BacktestPath) -> Response:
    """A finished backtest's HTML report (text/html). 404 while it is queued or running, when it failed, or when
    its report files were removed."""
    report = backtests.report_file(db_session(), current_settings(), guard.user_id(), path.backtest_id)
    return Response(report.read_text(encoding="utf-8"), mimetype="text/html")


@api.delete("/backtests/<int:backtest_id>", tags=[TAG], responses={204: None})
@guard.requires("analyze")
def delete_backtest(path: BacktestPath) -> Response:
    """Delete a backtest and its report files. A queued one is dropped before any worker runs it; a running one
    is refused with 409 until it finishes."""
    backtests.delete_backtest(db_session(), current_settings(), guard.user_id(), path.backtest_id)
    return Response(status=204)
