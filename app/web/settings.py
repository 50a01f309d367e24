"""Settings: accounts (paper with a starting balance, live with exchange keys stored encrypted and shown masked),
each account's trading state with stop and resume, LLM provider keys (masked). Risk settings live in
`settings_risk`, notification channels in `settings_channels`; all on this one blueprint.

Secrets typed here (exchange keys, LLM keys) go straight to the services, which encrypt them; they are never
logged, flashed or written back into a page.
"""

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import ServiceError
from app.services import account_opening, accounts, credentials, kill_switch, notification_channels
from app.services.account_opening import NewLiveAccount
from app.services.credentials import ExchangeKeys
from app.services.notification_wire import EVENT_TITLES
from app.web.common import current_settings, db_session, now, owned, show_error, user_id
from app.web.settings_forms import (
    PROVIDER_NAMES,
    ChannelForm,
    HaltForm,
    LiveAccountForm,
    LlmKeyForm,
    PaperAccountForm,
)

blueprint = Blueprint("settings", __name__)

DEFAULT_HALT_REASON = "stopped by its owner from the web page"


def render_index(status: int = 200, **extra: Any) -> tuple[str, int]:
    """The settings page with fresh forms, except those passed in (a refused submit, its errors and what was
    typed) and other `extra` template values (a webhook's signing secret, shown once)."""
    session, uid = db_session(), user_id()
    context: dict[str, Any] = {
        "paper_form": PaperAccountForm(formdata=None),
        "live_form": LiveAccountForm(formdata=None),
        "llm_form": LlmKeyForm(formdata=None),
        "channel_form": ChannelForm(formdata=None),
        **extra,
    }
    return render_template(
        "settings/index.html",
        statuses=accounts.trading_statuses(session, uid),
        llm_keys=credentials.llm_keys(session, uid),
        provider_names=PROVIDER_NAMES,
        channels=notification_channels.list_channels(session, uid),
        event_titles=EVENT_TITLES,
        **context,
    ), status


@blueprint.get("/settings")
@login_required
def index() -> ResponseReturnValue:
    return render_index()


@blueprint.post("/settings/accounts/paper")
@login_required
def add_paper_account() -> ResponseReturnValue:
    form = PaperAccountForm()
    if not form.validate_on_submit():
        return render_index(400, paper_form=form)
    session = db_session()
    try:
        account = account_opening.add_paper_account(
            session, user_id(), form.name.data or "", form.starting_balance.data or ""
        )
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return render_index(400, paper_form=form)
    session.commit()
    flash(
        f"Paper account #{account.id} {account.name} opened with {account.starting_balance:,.2f} "
        f"{account.quote_currency}.",
        "info",
    )
    return redirect(url_for("settings.index") + "#accounts")


@blueprint.post("/settings/accounts/live")
@login_required
def add_live_account() -> ResponseReturnValue:
    form = LiveAccountForm()
    if not form.validate_on_submit():
        return render_index(400, live_form=form)
    session = db_session()
    name = (form.name.data or "").strip()
    keys = ExchangeKeys(
        exchange_id=(form.exchange_id.data or "").strip().lower(),
        label=name,
        api_key=form.api_key.data or "",
        api_secret=form.api_secret.data or "",
        passphrase=form.passphrase.data or "",
        sandbox=bool(form.sandbox.data),
    )
    try:
        account = account_opening.add_live_account(
            session, current_settings(), user_id(), NewLiveAccount(name, keys, form.base_url.data or None)
        )
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return render_index(400, live_form=form)
    session.commit()
    hint = account.credential.api_key_hint if account.credential else ""
    flash(
        f"Live account #{account.id} {account.name} on {account.exchange_id} added with key {hint}. "
        "Its balances load at the next reconciliation.",
        "info",
    )
    return redirect(url_for("settings.index") + "#accounts")


@blueprint.post("/settings/llm-keys")
@login_required
def set_llm_key() -> ResponseReturnValue:
    form = LlmKeyForm()
    if not form.validate_on_submit():
        return render_index(400, llm_form=form)
    session = db_session()
    try:
        stored = credentials.store_llm_key(
            session, current_settings(), user_id(), form.provider.data or "", form.api_key.data or ""
        )
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return render_index(400, llm_form=form)
    session.commit()
    flash(f"{PROVIDER_NAMES.get(stored.provider, stored.provider)} key saved: {stored.api_key_hint}.", "info")
    return redirect(url_for("settings.index") + "#llm-keys")


@blueprint.post("/settings/llm-keys/<provider>/delete")
@login_required
def delete_llm_key(provider: str) -> ResponseReturnValue:
    session = db_session()
    removed = owned(credentials.delete_llm_key, session, user_id(), provider)
    session.commit()
    flash(f"{PROVIDER_NAMES.get(removed.provider, removed.provider)} key {removed.hint} deleted.", "info")
    return redirect(url_for("settings.index") + "#llm-keys")


@blueprint.post("/settings/accounts/<id:account_id>/halt")
@login_required
def halt_account(account_id: int) -> ResponseReturnValue:
    """Stop new positions on one account (HALTED; exits still run) with an optional reason from the form."""
    form = HaltForm()
    if not form.validate_on_submit():
        flash("Why stop: " + " ".join(str(e) for e in form.reason.errors), "error")
        return redirect(_back())
    session = db_session()
    try:
        account = owned(
            kill_switch.engage_account,
            session,
            user_id(),
            account_id,
            (form.reason.data or "").strip() or DEFAULT_HALT_REASON,
            now(),
        )
    except ServiceError as error:
        session.rollback()
        flash(error.message, "error")
        return redirect(_back())
    session.commit()
    flash(f"Trading stopped on account #{account.id} {account.name}: no new positions, exits still run.", "info")
    return redirect(_back())


@blueprint.post("/settings/accounts/<id:account_id>/resume")
@login_required
def resume_account(account_id: int) -> ResponseReturnValue:
    """A person's deliberate resume of a HALTED or REDUCING account (the drawdown is measured afresh)."""
    session = db_session()
    try:
        resumed = owned(accounts.resume_trading, session, user_id(), account_id, now())
    except ServiceError as error:
        session.rollback()
        flash(error.message, "error")
        return redirect(_back())
    session.commit()
    account = resumed.account
    flash(
        f"Account #{account.id} {account.name} is trading again (was {resumed.previous_state.value}); drawdown is "
        f"measured from {resumed.peak_equity:,.2f} {account.quote_currency}.",
        "info",
    )
    return redirect(_back())


def _back() -> str:
    """Where the stop or resume came from (the dashboard, the risk page) when it is this site, else settings."""
    referrer = urlsplit(request.referrer or "")
    if (
        referrer.netloc == request.host
        and referrer.scheme in ("http", "https")
        and referrer.path.startswith("/")
        and not referrer.path.startswith("//")
    ):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return url_for("settings.index") + "#accounts"


# The other settings routes attach themselves to `blueprint` when imported.
from app.web import settings_channels, settings_risk  # noqa: E402, F401
