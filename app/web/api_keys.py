"""REST API keys: create (name, scopes, caps, allowed models, expiry), list, revoke.

A new key is shown once, in the answer to the create form (not cached, never flashed, kept in the session or
logged): only its SHA-256 is stored, so it cannot be shown again. Each rendered form carries a one-time request id;
the ids already used are remembered in the session, so reloading that answer (the browser re-sends the form) does
not create a second key.
"""

import secrets
from decimal import Decimal, InvalidOperation

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.errors import InvalidInputError, ServiceError
from app.services import api_keys
from app.web.common import db_session, now, owned, show_error, user_id
from app.web.settings_forms import MultiCheckboxField

blueprint = Blueprint("api_keys", __name__)
USED_REQUESTS = "api_key_requests_used"
USED_REQUESTS_KEPT = 20

SCOPE_WORDS = {
    "read": "Read: accounts, analyses, watches, backtests, usage",
    "analyze": "Analyze: ask for analyses and backtests (may spend AI budget)",
    "trade": "Trade: execute signals and change watches that trade",
    "admin": "Admin: everything above",
}


class ApiKeyForm(FlaskForm):
    FIELD_ALIASES = {
        "scope": "scopes",
        "daily_budget": "daily_budget_usd",
        "monthly_budget": "monthly_budget_usd",
        "model": "allowed_models",
        "expires": "expires_in_days",
    }

    name = StringField("Name", validators=[DataRequired("Enter a name that says what the key is for."), Length(max=80)])
    scopes = MultiCheckboxField(
        "Scopes", choices=[SelectChoice(scope, SCOPE_WORDS[scope]) for scope in api_keys.SCOPES], default=["read"]
    )
    daily_budget_usd = StringField("Daily cap (USD)", validators=[Optional()])
    monthly_budget_usd = StringField("Monthly cap (USD)", validators=[Optional()])
    allowed_models = MultiCheckboxField("Allowed models (none ticked: any model)", choices=[])
    expires_in_days = StringField("Expires after (days)", validators=[Optional()])
    request_id = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_models.choices = [SelectChoice(model, model) for model in api_keys.model_choices()]


def _page(form: ApiKeyForm, status: int = 200, issued: api_keys.IssuedKey | None = None) -> ResponseReturnValue:
    keys = api_keys.list_keys(db_session(), user_id())
    response = render_template(
        "api_keys/index.html",
        form=form,
        keys=keys,
        issued=issued,
        now=now(),
        allowed_models=api_keys.allowed_models,
    )
    if issued is not None:
        # The one page that holds the key: no browser or proxy may keep a copy.
        return response, status, {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return response, status


@blueprint.get("/api-keys")
@login_required
def index() -> ResponseReturnValue:
    return _page(_blank_form())


@blueprint.post("/api-keys")
@login_required
def create() -> ResponseReturnValue:
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    request_id = form.request_id.data or ""
    used: list[str] = session.get(USED_REQUESTS, [])
    if request_id in used:
        flash(
            "That form was already sent and its key created (see the list): a key is shown only once. "
            "Revoke it and create another if you did not copy it.",
            "warning",
        )
        return redirect(url_for("api_keys.index"))
    database = db_session()
    try:
        issued = api_keys.issue_key(
            database,
            user_id(),
            form.name.data or "",
            form.scopes.data or [],
            now(),
            _days(form.expires_in_days.data),
            daily_budget_usd=_usd(form.daily_budget_usd.data, "daily_budget"),
            monthly_budget_usd=_usd(form.monthly_budget_usd.data, "monthly_budget"),
            allowed_models=form.allowed_models.data or [],
        )
    except ServiceError as error:
        database.rollback()
        show_error(form, error)
        return _page(form, 400)
    database.commit()
    if request_id:
        session[USED_REQUESTS] = [*used, request_id][-USED_REQUESTS_KEPT:]
    # A fresh form below the new key: the request's values are not echoed into a second create.
    return _page(_blank_form(), 201, issued)


def _blank_form() -> ApiKeyForm:
    form = ApiKeyForm(formdata=None)
    form.request_id.data = secrets.token_urlsafe(16)
    return form


@blueprint.post("/api-keys/<id:key_id>/revoke")
@login_required
def revoke(key_id: int) -> ResponseReturnValue:
    database = db_session()
    key = owned(api_keys.revoke_key, database, user_id(), key_id, now())
    database.commit()
    flash(f"API key #{key.id} {key.name} ({key.prefix}...) revoked: its next request is refused.", "info")
    return redirect(url_for("api_keys.index"))


def _usd(text: str | None, field: str) -> Decimal | None:
    """An amount in USD as typed (empty: no cap of its own); the service checks its range. Raises
    `InvalidInputError` naming the field for text that is not a number."""
    if text is None or not text.strip():
        return None
    try:
        return Decimal(text.strip().replace(",", "").removeprefix("$"))
    except InvalidOperation:
        raise InvalidInputError(f'{field} must be a positive amount in USD, got "{text[:40]}"', field=field) from None


MAX_EXPIRY_DAYS = 3650


def _days(text: str | None) -> int | None:
    """Days until the key expires as typed (empty: never). Raises `InvalidInputError` (field `expires`) for anything
    but a whole number from 1 to `MAX_EXPIRY_DAYS`."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_EXPIRY_DAYS:
        raise InvalidInputError(
            f'expires must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}, got "{value[:40]}"', field="expires"
        )
    return int(value)
