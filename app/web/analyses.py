"""Signals: the user's analyses page by page, and one analysis with everything on record (`services.explain`, as
`GET /api/v1/analyses/<id>` and the `explain` command show it) plus the indicators it read, rebuilt from the candles."""

from flask import Blueprint, flash, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import ServiceError
from app.models import AnalysisStatus
from app.schemas.explain import ReproductionOut
from app.services import analysis_pages, explain
from app.services.analyses import AnalysisFilter
from app.web.common import before_id, current_settings, db_session, owned, user_id

blueprint = Blueprint("analyses", __name__, url_prefix="/analyses")

PER_PAGE = 25


@blueprint.get("")
@login_required
def index() -> ResponseReturnValue:
    """Newest first, `PER_PAGE` at a time (`?before=<id>` for older ones), filtered by `symbol` and `status`."""
    symbol = (request.args.get("symbol") or "").strip()
    status = (request.args.get("status") or "").strip()
    filters = AnalysisFilter(symbol=symbol or None, status=status or None)
    code, before = 200, None
    try:
        before = before_id(request.args.get("before"))
        page = analysis_pages.analysis_page(db_session(), user_id(), filters, PER_PAGE, before)
        items, next_before = page.items, page.next_before_id
    except ServiceError as error:
        flash(error.message, "error")
        items, next_before, code = [], None, 400
    return render_template(
        "analyses/index.html",
        items=items,
        next_before=next_before,
        first_page=before is None,
        symbol=symbol,
        status=status,
        statuses=[member.value for member in AnalysisStatus],
    ), code


@blueprint.get("/<id:analysis_id>")
@login_required
def detail(analysis_id: int) -> ResponseReturnValue:
    session = db_session()
    explanation = owned(explain.explain_analysis, session, analysis_id, user_id())
    return render_template(
        "analyses/detail.html",
        e=explanation,
        a=explanation.analysis,
        signal=explanation.analysis.signal or {},
        indicators=analysis_pages.indicator_snapshot(session, current_settings(), explanation.analysis),
        reproduce_command=ReproductionOut.of(explanation.reproduction).command,
    )
