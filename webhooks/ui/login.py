"""Blueprint `auth`: /login and /logout."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from clinic.services.auth import authenticate
from webhooks.auth import current_user, login_user, logout_user, safe_next
from webhooks.ui.db import db

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    target = safe_next(request.values.get("next")) or url_for("schedule.day")
    if request.method == "GET":
        if current_user() is not None:
            return redirect(target)
        return render_template("login.html", login="", error=None, next=request.args.get("next", ""))

    login_name = request.form.get("login", "")
    session = db()
    result = authenticate(session, login_name, request.form.get("password", ""), request.remote_addr or "")
    # Commit failures too: the failed-attempt counters and the lock must persist.
    session.commit()
    if result.user is None:
        back = request.form.get("next", "")
        page = render_template("login.html", login=login_name, error=result.error, next=back)
        if result.retry_after:
            return page, 429, {"Retry-After": str(result.retry_after)}
        return page, 401
    login_user(result.user)
    return redirect(target)


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    logout_user()
    db().commit()  # the user's session epoch: every other session of his ends too
    return redirect(url_for("auth.login"))
