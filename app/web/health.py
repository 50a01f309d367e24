"""Liveness and readiness for load balancers and `make run` checks."""

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from app.extensions import db_session, limiter
from app.services.health import database_reachable

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@limiter.exempt
def healthz() -> ResponseReturnValue:
    # The details (which may name the host) go to the redacted log, not to an anonymous caller.
    if not database_reachable(db_session()):
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
