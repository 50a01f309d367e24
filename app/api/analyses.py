"""Analyses: ask for a cost-bounded signal now (`POST /analyze`), list past ones, read one with everything behind it."""

from flask import Response, jsonify
from flask_openapi3 import Tag

from ai.outcome import SignalOutcome
from app import current_settings
from app.api import guard
from app.api.blueprint import api
from app.api.errors import error_response
from app.api.pagination import before_id, next_cursor
from app.extensions import db_session
from app.models import AnalysisStatus
from app.schemas.analyses import AnalysesQuery, AnalysisOut, AnalysisPage, AnalysisPath, AnalysisSummaryOut, AnalyzeIn
from app.schemas.explain import ExplanationOut
from app.services import analyses, explain

TAG = Tag(name="analyses", description="signals asked for now, and the record of every analysis")


@api.post("/analyze", tags=[TAG], responses={200: AnalysisOut})
@guard.paid
@guard.requires("analyze")
def analyze(body: AnalyzeIn) -> Response:
    """Ask the signal source for one BUY/SELL/HOLD signal on the latest closed bar and record it.

    Refused with 402 `BUDGET_EXCEEDED` before any provider call when the call's worst case exceeds `max_cost_usd`,
    this key's daily or monthly cap or the user's remaining budget (`details`: the cap, what is spent, the
    estimate). With `account_id` the risk manager judges the signal; with `execute` (trade scope) an approved order
    is placed. Every other outcome is 200 with the recorded analysis: its `status` says whether a signal came.
    """
    if body.execute:
        guard.require_scope("trade", "execute")
    request = analyses.AnalyzeNow(
        user_id=guard.user_id(),
        api_key_id=guard.current_key().id,
        symbol=body.symbol,
        timeframe=body.timeframe,
        signal_source=body.signal_source,
        model=body.model,
        params=body.params,
        max_cost_usd=body.max_cost_usd,
        account_id=body.account_id,
        execute=body.execute,
        exchange_id=body.exchange,
        until=body.until,
    )
    result = analyses.analyze_latest(db_session(), current_settings(), request)
    refusal = _budget_refusal(result.outcome)
    if refusal is not None:
        return refusal
    return jsonify(AnalysisOut.of(result).to_json())


def _budget_refusal(outcome: SignalOutcome) -> Response | None:
    if outcome.status is not AnalysisStatus.REFUSED:
        return None
    for reason in outcome.reasons:
        if reason.code == "BUDGET_EXCEEDED":
            return error_response(402, reason.code, reason.message, dict(reason.values))
    return None


@api.get("/analyses", tags=[TAG], responses={200: AnalysisPage})
@guard.requires("read")
def list_analyses(query: AnalysesQuery) -> Response:
    """The user's analyses, newest first, filtered by symbol, timeframe, status, watch or account."""
    filters = analyses.AnalysisFilter(
        symbol=query.symbol,
        timeframe=query.timeframe,
        status=query.status,
        watch_id=query.watch_id,
        account_id=query.account_id,
    )
    page = analyses.list_analyses(db_session(), guard.user_id(), filters, query.limit, before_id(query.cursor))
    body = AnalysisPage(items=[AnalysisSummaryOut.of(a) for a in page.items], next_cursor=next_cursor(page))
    return jsonify(body.model_dump(mode="json"))


@api.get("/analyses/<int:analysis_id>", tags=[TAG], responses={200: ExplanationOut})
@guard.requires("read")
def get_analysis(path: AnalysisPath) -> Response:
    """One analysis with everything `explain` shows: its input, the answer, cost, the risk decision, orders, fills."""
    explanation = explain.explain_analysis(db_session(), path.analysis_id, guard.user_id())
    return jsonify(ExplanationOut.of(explanation).to_json())
