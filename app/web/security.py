"""Security headers on every response (Flask-Talisman): a Content-Security-Policy without inline scripts or styles,
frame denial, no MIME sniffing, a same-origin referrer, and HSTS plus secure cookies outside development.

Two kinds of page relax the policy through `talisman(content_security_policy=...)` on their view: the backtest
report (a self-contained file with inline CSS and SVG, and no script at all) and the API's Swagger UI page.
"""

from flask import Flask
from flask_talisman import Talisman

from app.config import Settings

talisman = Talisman()

# Everything the pages load comes from this origin (static/ and static/vendor/); charts fetch JSON from it too.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# A stored report page: its own inline CSS and SVG, nothing to run, nothing to fetch.
REPORT_POLICY = {
    "default-src": "'none'",
    "style-src": "'unsafe-inline'",
    "img-src": "data:",
    "frame-ancestors": "'none'",
}


def secure(app: Flask, settings: Settings) -> None:
    """Turn the headers on for `app`. HTTPS is the reverse proxy's job (no redirect here), but outside development
    browsers are told to stay on it (HSTS) and cookies are sent over it only."""
    talisman.init_app(
        app,
        force_https=False,
        frame_options="DENY",
        strict_transport_security=settings.is_production,
        content_security_policy=CONTENT_SECURITY_POLICY,
        referrer_policy="same-origin",
        session_cookie_secure=settings.is_production,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
    )


# Swagger UI's page (from flask-openapi3-swagger) starts itself with an inline script and styles.
SWAGGER_POLICY = {
    "default-src": "'self'",
    "script-src": "'self' 'unsafe-inline'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}
SWAGGER_VIEWS = ("swagger.swagger", "openapi.openapi")


def relax_for_swagger(app: Flask) -> None:
    """The API's documentation pages are the package's own HTML: give them the policy they need, nothing more."""
    for endpoint in SWAGGER_VIEWS:
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = talisman(content_security_policy=SWAGGER_POLICY)(
                app.view_functions[endpoint]
            )
