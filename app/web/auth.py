"""Signing up, in and out, and changing the password (Flask-Login sessions, Flask-WTF forms with CSRF).

Failed sign-ins are throttled twice: per address sending them (any outcome counts) and per email tried (only
failures count), so guessing one user's password from many addresses is slowed as well.
"""

import logging
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.errors import ServiceError
from app.extensions import limiter
from app.services import account_opening, users
from app.web.common import db_session, show_error, user_id

blueprint = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

SIGN_IN_LIMIT = "10 per minute"
FAILED_SIGN_IN_LIMIT = "5 per 15 minutes"


PASSWORD_LENGTH = Length(
    min=users.MIN_PASSWORD_LENGTH,
    max=users.MAX_PASSWORD_LENGTH,
    message=f"A password needs {users.MIN_PASSWORD_LENGTH} to {users.MAX_PASSWORD_LENGTH} characters.",
)
# Password managers fill in and save by these hints.
NEW_PASSWORD = {"autocomplete": "new-password"}


class LoginForm(FlaskForm):
    # No address syntax check here: signing in only looks the address up, and a strict validator would
    # lock out accounts on special-use domains such as the local demo's steadyhand.local.
    email = EmailField(
        "Email",
        validators=[DataRequired("Enter your email address."), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in")


class SignUpForm(FlaskForm):
    display_name = StringField(
        "Your name", validators=[DataRequired("Enter your name."), Length(max=80)], render_kw={"autocomplete": "name"}
    )
    email = EmailField(
        "Email",
        validators=[DataRequired("Enter your email address."), Length(max=254)],
        render_kw={"autocomplete": "email"},
    )
    password = PasswordField(
        "Password", validators=[DataRequired("Choose a password."), PASSWORD_LENGTH], render_kw=NEW_PASSWORD
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired("Repeat the password."), EqualTo("password", "Passwords differ.")],
        render_kw=NEW_PASSWORD,
    )
    # Text, not a DecimalField: the service's message names the value typed ("... got abc"), WTForms' would not.
    starting_balance = StringField(
        "Paper account balance (USDT)",
        default="100",
        validators=[DataRequired("Enter the balance the paper account starts with.")],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        "New password", validators=[DataRequired("Choose a new password."), PASSWORD_LENGTH], render_kw=NEW_PASSWORD
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired("Repeat the new password."), EqualTo("new_password", "Passwords differ.")],
        render_kw=NEW_PASSWORD,
    )


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: an attacker's link must not bounce a user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("dashboard.index")


def _email_tried() -> str:
    return "sign-in:" + (request.form.get("email") or "").strip().lower()[:254]


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_LIMIT, methods=["POST"])
@limiter.limit(
    FAILED_SIGN_IN_LIMIT,
    methods=["POST"],
    key_func=_email_tried,
    deduct_when=lambda response: response.status_code == 401,
)
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            user = users.authenticate(db_session(), form.email.data or "", form.password.data or "")
            if user is not None:
                login_user(user, remember=bool(form.remember.data))
                log.info("user signed in", extra={"user_id": user.id})
                return redirect(_safe_next(request.args.get("next")))
            log.info("failed sign-in attempt")
            flash("Wrong email or password.", "error")
            status = 401
    return render_template("auth/login.html", form=form), status


@blueprint.route("/signup", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_LIMIT, methods=["POST"])
def signup() -> ResponseReturnValue:
    """A new user and their first paper account, in one unit of work; signed in on success."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = SignUpForm()
    if not form.validate_on_submit():
        return render_template("auth/signup.html", form=form), 400 if request.method == "POST" else 200
    session = db_session()
    try:
        user = users.sign_up(session, form.email.data or "", form.password.data or "", form.display_name.data or "")
        account_opening.add_paper_account(session, user.id, "Paper account", form.starting_balance.data or "")
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return render_template("auth/signup.html", form=form), 400
    session.commit()
    login_user(user)
    log.info("user signed up", extra={"user_id": user.id})
    flash("Welcome to Steadyhand. Your paper account is ready: add a watch to get the first signals.", "info")
    return redirect(url_for("dashboard.index"))


@blueprint.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(SIGN_IN_LIMIT, methods=["POST"])
def change_password() -> ResponseReturnValue:
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return render_template("auth/password.html", form=form), 400 if request.method == "POST" else 200
    session = db_session()
    try:
        user = users.change_password(session, user_id(), form.current_password.data or "", form.new_password.data or "")
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return render_template("auth/password.html", form=form), 400
    session.commit()
    login_user(user)  # this session goes on under the new password; every other one is signed out
    flash("Password changed. Other browsers signed in to your account are signed out.", "info")
    return redirect(url_for("dashboard.index"))


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
