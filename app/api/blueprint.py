"""The `/api/v1` blueprint every resource module adds its routes to, with its key check, idempotency and limits."""

from flask_openapi3 import APIBlueprint
from werkzeug.exceptions import HTTPException

from app.api import errors, guard
from app.errors import ServiceError
from app.extensions import csrf, limiter

PREFIX = "/api/v1"

api = APIBlueprint("api", __name__, url_prefix=PREFIX, abp_security=[{"bearer": []}], abp_responses=errors.RESPONSES)
api.before_request(guard.before_request)
api.after_request(guard.after_request)
api.teardown_request(guard.teardown_request)
# Token-authenticated: a browser's cookies never authorize these requests, so the forms' CSRF check does not apply.
csrf.exempt(api)
limiter.limit(guard.rate_limit, key_func=guard.rate_limit_key)(api)
api.register_error_handler(ServiceError, errors.service_error)
api.register_error_handler(HTTPException, errors.http_error)
api.register_error_handler(Exception, errors.unexpected)
