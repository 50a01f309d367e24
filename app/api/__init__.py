"""The REST API, `/api/v1`: one blueprint, one module per noun, JSON only.

Thin: bearer key -> scope -> pydantic schema (validated by flask-openapi3, which also builds the OpenAPI 3.1 document
from the same models) -> service -> schema. Every refusal has one shape, `{"error": {"code", "message", "details"}}`.
"""

from flask_cors import CORS
from flask_openapi3 import OpenAPI

from app.api import accounts, analyses, backtests, markets, scorecard, usage, watches  # noqa: F401  (their routes)
from app.api.blueprint import PREFIX, api
from app.config import Settings


def register_api(app: OpenAPI, settings: Settings) -> None:
    """Mount `/api/v1` and, when origins are configured, CORS for it. Unmatched paths under the prefix get JSON
    errors from `app.web.errors`, which owns the app-level handlers."""
    app.register_api(api)
    if settings.api.cors_origins:
        CORS(
            app,
            resources={rf"{PREFIX}/*": {"origins": list(settings.api.cors_origins)}},
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Retry-After", "Idempotent-Replayed", "X-RateLimit-Remaining"],
            max_age=600,
        )
