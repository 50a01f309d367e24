"""Usage: what AI calls cost, by day, model, watch and API key, and the budgets they count against."""

from flask import Response, jsonify
from flask_openapi3 import Tag

from app.api import guard
from app.api.blueprint import api
from app.extensions import db_session
from app.schemas.usage import BudgetsOut, BudgetsQuery, UsageOut, UsageQuery
from app.services import system_clock, usage

TAG = Tag(name="usage", description="AI spend and the budgets that bound it")


@api.get("/usage", tags=[TAG], responses={200: UsageOut})
@guard.requires("read")
def get_usage(query: UsageQuery) -> Response:
    """The user's AI spend over the last `days` UTC days (today included), in USD: total, by day, by model, by
    watch and by API key (settled cost plus reservations still open), and the response-cache hit rate of their AI
    analyses in the window."""
    report = usage.usage_report(db_session(), guard.user_id(), query.days, system_clock())
    return jsonify(UsageOut.of(report).model_dump(mode="json"))


@api.get("/budgets", tags=[TAG], responses={200: BudgetsOut})
@guard.requires("read")
def get_budgets(query: BudgetsQuery) -> Response:
    """The user's daily and monthly AI budgets (UTC day and month) with what is spent and what remains, and the
    calling key's own caps, which count only the calls made through it (`budget_usd` None: no cap of its own)."""
    budgets = usage.budgets(db_session(), guard.user_id(), guard.current_key().id, system_clock())
    return jsonify(BudgetsOut.of(budgets).model_dump(mode="json"))
