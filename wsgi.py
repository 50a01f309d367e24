"""WSGI entry point (gunicorn wsgi:app) and the module the `flask --app wsgi` CLI loads."""

from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    raise SystemExit(f"steadyhand: configuration error: {error}") from None
