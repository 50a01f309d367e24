"""Styled error pages (404, 405, 413, 429, 500) with a way back, for every path outside the REST API, whose
errors stay JSON (`app.api.errors`)."""

import logging

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from app.api import errors as api_errors
from app.api.blueprint import PREFIX

log = logging.getLogger(__name__)

_PAGES = {
    400: ("Bad request", "The page could not understand that request. Go back and try again."),
    403: ("Not allowed", "This page is not open to you."),
    404: ("Page not found", "There is nothing here, or it belongs to another user."),
    405: ("Not allowed here", "That action cannot be done on this address."),
    413: ("Too large", "That upload is larger than the 1 MB we accept."),
    429: ("Slow down", "Too many requests in a short time. Wait a minute, then try again."),
    500: ("Something went wrong", "The request failed on our side and was logged. Try again in a moment."),
}


def _in_api() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def error_page(error: HTTPException) -> Response:
    """The HTML page for an HTTP error, keeping its status and headers (Retry-After on 429, Allow on 405)."""
    status = error.code or 500
    title, message = _PAGES.get(status, (error.name, error.description or ""))
    if status == 400 and error.description and "CSRF" in error.description:
        message = "The form expired or came from another site. Reload the page and send it again."
    response = Response(
        render_template("errors/error.html", status=status, title=title, message=message), status=status
    )
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def register(app: Flask) -> None:
    """One app-level handler per kind: JSON under the API's prefix (routes no API view matched), pages elsewhere."""

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return api_errors.http_error(error) if _in_api() else error_page(error)

    @app.errorhandler(InternalServerError)
    def _server_error(error: InternalServerError) -> Response:
        if _in_api():
            original = error.original_exception
            return api_errors.unexpected(original if isinstance(original, Exception) else error)
        log.exception("page request failed", extra={"path": request.path, "method": request.method})
        return error_page(InternalServerError())
