"""What every `/api/v1` request passes through: the bearer key, the route's scope, the Idempotency-Key of a POST, the
per-key rate limit, and the request's one unit of work (committed when it succeeded, rolled back when it did not)."""

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request
from flask_limiter.util import get_remote_address

from app.errors import ForbiddenError, InvalidInputError
from app.extensions import db_session, limiter
from app.models import ApiKey
from app.services import api_keys, idempotency, system_clock

_SCOPE_ATTRIBUTE = "api_scope"
_REPLAYED_HEADER = "Idempotent-Replayed"


def requires[F: Callable[..., Any]](scope: str) -> Callable[[F], F]:
    """Mark a route as needing `scope` (read, analyze, trade or admin). Put it under the route decorator: the key and
    its scope are checked before the request body is even parsed. A route without one is refused to every key."""
    if scope not in api_keys.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def mark(view: F) -> F:
        setattr(view, _SCOPE_ATTRIBUTE, scope)
        return view

    return mark


def current_key() -> ApiKey:
    """The key the current request was authenticated with."""
    key: ApiKey = g.api_key
    return key


def user_id() -> int:
    return current_key().user_id


def require_scope(scope: str, why: str) -> None:
    """Refuse (403 `FORBIDDEN`) a request whose key lacks `scope`; `why` says what in the request needs it."""
    if not api_keys.has_scope(current_key(), scope):
        raise ForbiddenError(
            f"this API key lacks the {scope} scope, which {why} needs (its scopes: {current_key().scopes})",
            code="MISSING_SCOPE",
            details={"required_scope": scope, "key_scopes": current_key().scopes.split()},
        )


def before_request() -> Response | None:
    """Authenticate, check the route's scope, then claim the Idempotency-Key (answering a completed repeat from
    what was stored). Raises the API's `ServiceError`s, which the blueprint turns into JSON."""
    if request.method == "OPTIONS":
        return None
    _refuse_nul_characters()
    session, now = db_session(), system_clock()
    key = api_keys.authenticate(session, _bearer_token(), now, address=request.remote_addr)
    session.commit()
    g.api_key = key
    view = current_app.view_functions.get(request.endpoint or "")
    require_scope(getattr(view, _SCOPE_ATTRIBUTE, "admin"), f"{request.method} {request.path}")
    header = request.headers.get("Idempotency-Key")
    if request.method != "POST" or header is None:
        return None
    fingerprint = idempotency.request_fingerprint(request.method, request.path, request.get_data())
    claim = idempotency.claim(session, key.user_id, header.strip(), request.method, request.path, fingerprint, now)
    if claim.stored is not None:
        stored = claim.stored
        response = Response(stored.body, status=stored.status_code, mimetype="application/json")
        if stored.location:
            response.headers["Location"] = stored.location
        response.headers[_REPLAYED_HEADER] = "true"
        return response
    g.idempotency_record = claim.record_id
    return None


def _refuse_nul_characters() -> None:
    """PostgreSQL text cannot hold NUL (U+0000), and no field of ours means one: refuse it up front, naming the
    field, instead of letting a database write or comparison fail."""
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise InvalidInputError(f"{name} must not contain a NUL character", field=name)
    body = request.get_json(silent=True) if request.is_json else None
    pending: list[tuple[str, Any]] = [("body", body)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInputError(f"{where} must not contain a NUL character", field=where)
        if isinstance(value, dict):
            for key, item in value.items():
                name = key if where == "body" else f"{where}.{key}"
                if "\x00" in key:
                    raise InvalidInputError(f"{name} must not contain a NUL character", field=name)
                pending.append((name, item))
        elif isinstance(value, list):
            pending.extend((f"{where}.{index}", item) for index, item in enumerate(value))


def after_request(response: Response) -> Response:
    """Commit a successful request's work (with its stored idempotent response, in one transaction); roll back a
    refused one and free its Idempotency-Key so a corrected retry can use it."""
    session = db_session()
    record_id: int | None = g.pop("idempotency_record", None)
    if response.status_code < 400:
        if record_id is not None:
            stored = idempotency.StoredResponse(
                response.status_code, response.get_data(as_text=True), response.headers.get("Location")
            )
            idempotency.complete(session, record_id, stored, system_clock())
        session.commit()
    else:
        session.rollback()
        if record_id is not None:
            idempotency.release(session, record_id)
    return response


def teardown_request(error: BaseException | None) -> None:
    """A request that crashed past the error handlers still frees its Idempotency-Key."""
    record_id: int | None = g.pop("idempotency_record", None)
    if error is not None and record_id is not None:
        idempotency.release(db_session(), record_id)


def rate_limit() -> str:
    from app import current_settings

    return current_settings().api.rate_limit


def paid_rate_limit() -> str:
    from app import current_settings

    return current_settings().api.paid_rate_limit


def rate_limit_key() -> str:
    """Limits count per API key (by a hash of the bearer token, known before any database read); a request without
    one counts against its address."""
    token = _bearer_token()
    if token:
        return "api-key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "address:" + get_remote_address()


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# POST /analyze and POST /backtests may start paid AI calls: one stricter bucket per key for both, on top of the
# blueprint's general limit.
paid = limiter.shared_limit(paid_rate_limit, scope="paid", key_func=rate_limit_key, override_defaults=False)
