"""The API's one error shape for every failure: service refusals, validation, unknown routes, rate limits, crashes."""

import logging
from http import HTTPStatus
from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from app.errors import ServiceError, shown
from app.schemas.common import ErrorBody, ErrorOut

log = logging.getLogger(__name__)

# Declared on every operation of the document, so any of them is a documented answer.
RESPONSES: dict[str | int | HTTPStatus, type[BaseModel] | dict[Any, Any] | None] = {
    status: ErrorOut for status in (400, 401, 402, 403, 404, 405, 409, 413, 415, 422, 429, 500)
}
_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}
_SHOWN_INPUT = 60  # characters of a rejected value quoted back


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    body = ErrorOut(error=ErrorBody(code=code, message=message, details=details or {}))
    response = jsonify(body.model_dump())
    response.status_code = status
    return response


# The services name fields as a person types them at the CLI; the API's bodies name a few differently.
_API_FIELDS = {"signals": "signal_source", "max_cost": "max_cost_usd", "exchange_id": "exchange"}


def service_error(error: ServiceError) -> Response:
    body = error.to_json()
    field = body["error"]["details"].get("field")
    if field in _API_FIELDS:
        body["error"]["details"]["field"] = _API_FIELDS[field]
    response = jsonify(body)
    response.status_code = error.http_status
    return response


def validation_error(error: ValidationError) -> Response:
    """flask-openapi3's callback for a request its models refuse: 422, the first problem in one line naming the field
    and the value, every problem in `details.errors`."""
    problems = [
        (".".join(str(part) for part in problem["loc"]) or "body", problem["msg"], problem.get("input"))
        for problem in error.errors(include_url=False, include_context=False)
    ] or [("body", "invalid request", None)]
    field, text, value = problems[0]
    if field == "body":  # not a JSON object at all: no model field to name
        text, value = "must be a JSON object, sent with Content-Type: application/json", None
    got = "" if value is None or isinstance(value, dict | list) else f', got "{shown(value)[:_SHOWN_INPUT]}"'
    message = f"{field}: {text[:1].lower()}{text[1:]}{got}"
    details = {"field": field, "errors": [{"field": name, "message": problem} for name, problem, _ in problems]}
    return error_response(422, "INVALID_INPUT", message, details)


def http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 404:
        message = f"no such resource: {request.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.path}"
    elif status == 429:
        message = f"rate limit exceeded ({error.description}); retry after the time in Retry-After"
    else:
        message = error.description or error.name
    response = error_response(status, _CODES.get(status, "HTTP_ERROR"), message)
    if status == 405 and error.response is None:
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def unexpected(error: Exception) -> Response:
    log.exception("API request failed", extra={"path": request.path, "method": request.method})
    return error_response(500, "INTERNAL_ERROR", "the request failed on our side; it was logged")
