"""Signing in and out, and the language switch."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from metamodel.db import IMMEDIATE
from metamodel.sqltypes import UTC

from .. import identity
from ..i18n import languages
from ..runtime import runtime

blueprint = Blueprint("auth", __name__)


class SignInForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=150)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1000)])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send a user on to another host after signing in."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("home.index")


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = SignInForm()
    error = None
    status = 200
    if form.validate_on_submit():
        engine = runtime().engine
        with engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                try:
                    user = identity.authenticate(
                        conn,
                        form.username.data,
                        form.password.data,
                        request.remote_addr,
                        dt.datetime.now(UTC),
                    )
                except identity.SignInRefused as refused:
                    user = None
                    error = _localised_refusal(str(refused))
                    status = 401
        if user is not None:
            session.clear()  # a fresh session: nothing from before signing in carries over
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/sign_in.html", form=form, error=error), status


def _localised_refusal(message: str) -> str:
    if message.startswith("too many"):
        return _("Too many failed sign-ins: this account is locked for a while. Try again later.")
    return _("Wrong username or password.")


@blueprint.post("/sign-out")
def sign_out():
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.sign_in"))


@blueprint.post("/language")
def switch_language():
    choice = request.form.get("language", "")
    if choice in languages():
        session["language"] = choice
        if current_user.is_authenticated:
            with runtime().engine.begin() as conn:
                identity.set_language(conn, current_user.id, choice)
    return redirect(_safe_next(request.form.get("next")))
