"""Sign in and out with email and password (Flask-Login sessions, CSRF-protected forms)."""

import logging
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from app.extensions import db_session, limiter
from app.services import users

blueprint = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


class LoginForm(FlaskForm):
    # No address syntax check here: signing in only looks the address up, and a strict validator would
    # lock out accounts on special-use domains such as the local demo's steadyhand.local.
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me signed in")


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: an attacker's link must not bounce a user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            user = users.authenticate(db_session(), form.email.data, form.password.data)
            if user is not None:
                login_user(user, remember=form.remember.data)
                log.info("user signed in", extra={"user_id": user.id})
                return redirect(_safe_next(request.args.get("next")))
            log.info("failed sign-in attempt")
            flash("Wrong email or password.", "error")
            status = 401
    return render_template("login.html", form=form), status


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
