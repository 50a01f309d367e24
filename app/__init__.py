"""The Flask application: configuration, persistence, web UI, CLI. Wires the Flask-free domain packages."""

import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from flask_openapi3 import Info, OpenAPI, SecurityScheme
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import PROJECT_ROOT, VARIABLES, Settings, environment_with_dotenv, load_settings
from app.extensions import csrf, db, limiter, login_manager, migrate
from app.logging_setup import configure_logging

SETTINGS_EXTENSION = "steadyhand.settings"
API_DESCRIPTION = (
    "AI-advised crypto trading for small accounts: the LLM proposes, deterministic code disposes. "
    "Authenticate with `Authorization: Bearer sh_...` (a key from `flask --app wsgi create-api-key`). "
    'Every error is `{"error": {"code", "message", "details"}}`; a POST may carry an `Idempotency-Key`.'
)


def create_app(config: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (and .env), with `config` overriding either.

    Keys of `config` that name a Steadyhand variable (README's configuration table) override the
    environment; any other key is set on Flask's `app.config` as is.
    """
    overrides = dict(config or {})
    source = dict(environment_with_dotenv() if environ is None else environ)
    source.update({key: str(value) for key, value in overrides.items() if key in VARIABLES})
    settings = load_settings(source)
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())

    from app.api.errors import validation_error
    from app.schemas.common import ErrorOut

    # flask-openapi3's Flask: it builds /api/v1/openapi.json from the pydantic models the API validates with.
    app = OpenAPI(
        __name__,
        info=Info(title="Steadyhand API", version="1", description=API_DESCRIPTION),
        security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearerFormat="sh_ API key")},
        doc_prefix="/api/v1",
        doc_url="/openapi.json",
        validation_error_callback=validation_error,
        validation_error_model=ErrorOut,
        instance_path=str(settings.instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.extensions[SETTINGS_EXTENSION] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # Every scheduled run holds a connection while it reads and writes (never across a provider call), and the
        # budget ledger and response cache take short ones of their own: room for the whole run pool.
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "pool_size": max(5, settings.scheduler.pool_size + 2),
            "max_overflow": max(10, settings.scheduler.pool_size * 2),
        },
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        REMEMBER_COOKIE_SECURE=settings.is_production,
        REMEMBER_COOKIE_HTTPONLY=True,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_ENABLED=True,
        RATELIMIT_HEADERS_ENABLED=True,
        # No request body of ours comes near 1 MB; a bigger one is refused (413) before it is read.
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Swagger UI would send the document's address to validator.swagger.io from any host but localhost.
        SWAGGER_CONFIG={"validatorUrl": None},
        TESTING=settings.env == "test",
    )
    app.config.update({key: value for key, value in overrides.items() if key not in VARIABLES})
    # Pages include the backtest report's sections from its Flask-free templates as "report/report_body.html".
    report_templates = PrefixLoader({"report": FileSystemLoader(PROJECT_ROOT / "backtest" / "templates")})
    app.jinja_loader = ChoiceLoader([loader for loader in (app.jinja_loader, report_templates) if loader])

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    login_manager.login_message = "Sign in to see that page."

    from app import models  # noqa: F401  (registers every table before migrations compare)
    from app.api import register_api
    from app.commands import register_cli
    from app.web import register_blueprints
    from app.web.security import relax_for_swagger

    register_blueprints(app, settings)
    register_api(app, settings)
    relax_for_swagger(app)
    register_cli(app)
    return app


def current_settings() -> Settings:
    return current_app.extensions[SETTINGS_EXTENSION]


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """SQLite leaves foreign keys off and fails fast on a busy file; the web workers and CLI share one file."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
