"""One account's risk settings (a field per setting, validated before anything is saved) and its trading state.

An empty field means the documented default: a setting the user clears is reset, one they change is set, one left
as shown is not touched (so a default stays a default when the defaults move).
"""

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required
from flask_wtf import FlaskForm

from app.errors import ServiceError
from app.services import accounts
from app.services.accounts import RiskChange, RiskView
from app.web.common import current_settings, db_session, owned, show_error, user_id
from app.web.settings import blueprint
from app.web.settings_forms import HaltForm, RiskForm, risk_label
from risk import RiskConfig

# What an empty setting means, in words, for the hint under its input.
EMPTY_DEFAULTS = {"symbol_allowlist": "all symbols", "trailing_stop_pct": "off"}


def shown_value(value: object) -> str:
    """A setting as the user types it: 1.5, 60, BTC/USDT,ETH/USDT, or "" for none (off / all symbols)."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(value)
    if hasattr(value, "normalize"):
        return format(value.normalize(), "f")
    return str(value)


def _form_for(view: RiskView) -> FlaskForm:
    """The form filled with the account's overrides; defaults stay empty (their value is in the placeholder)."""
    data = {setting.name: shown_value(setting.value) for setting in view.settings if setting.overridden}
    return RiskForm(formdata=None, data=data)


def _page(view: RiskView, form: FlaskForm, status: int = 200) -> ResponseReturnValue:
    for setting in view.settings:
        # The default shows in the empty input; an empty input keeps (or goes back to) the default.
        getattr(form, setting.name).render_kw = {"placeholder": _default_text(setting.name)}
    return render_template(
        "settings/risk.html",
        view=view,
        form=form,
        default_of=lambda name: _default_text(name) or EMPTY_DEFAULTS.get(name, "none"),
        risk_label=risk_label,
        halt_form=HaltForm(formdata=None),
    ), status


def _default_text(name: str) -> str:
    return shown_value(getattr(RiskConfig(), name))


@blueprint.get("/settings/accounts/<id:account_id>/risk")
@login_required
def risk(account_id: int) -> ResponseReturnValue:
    view = owned(accounts.risk_view, db_session(), user_id(), account_id)
    return _page(view, _form_for(view))


@blueprint.post("/settings/accounts/<id:account_id>/risk")
@login_required
def change_risk(account_id: int) -> ResponseReturnValue:
    session = db_session()
    view = owned(accounts.risk_view, session, user_id(), account_id)
    form = RiskForm()
    if not form.validate_on_submit():
        return _page(view, form, 400)
    change = _change(view, form)
    if not change.set and not change.reset:
        flash("Nothing changed.", "info")
        return redirect(url_for("settings.risk", account_id=account_id))
    try:
        accounts.change_risk_settings(session, current_settings(), user_id(), account_id, change)
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return _page(accounts.risk_view(session, user_id(), account_id), form, 400)
    session.commit()
    words = [f"{risk_label(name)} {value or 'none'}" for name, value in change.set.items()]
    words += [f"{risk_label(name)} back to its default" for name in change.reset]
    flash("Risk settings saved: " + "; ".join(words) + ".", "info")
    return redirect(url_for("settings.risk", account_id=account_id))


def _change(view: RiskView, form: FlaskForm) -> RiskChange:
    """What differs from the stored settings: typed values to set, cleared overrides to reset."""
    to_set: dict[str, str] = {}
    reset: list[str] = []
    for setting in view.settings:
        if setting.name not in request.form:
            continue  # a form without this input (an older page) leaves the setting alone
        typed = (getattr(form, setting.name).data or "").strip()
        if not typed:
            if setting.overridden:
                reset.append(setting.name)
        elif not setting.overridden or typed != shown_value(setting.value):
            to_set[setting.name] = typed
    return RiskChange(to_set, tuple(reset))
