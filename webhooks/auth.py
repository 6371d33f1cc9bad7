"""Who is logged in, and the gates every UI request passes.

The session is Flask's signed cookie holding the user id, the login time and a stamp derived
from the password hash and the user's session epoch: changing a user's password, logging out,
deactivating or locking them ends every session of that user on its next request (a copied
cookie is worthless after logout), and a session ends SESSION_LIFETIME after login whatever
the activity. Every endpoint requires a session except the login page
and static files; the МИС API and the public webhooks authenticate by token or signature and
are left alone here (see TOKEN_AUTH_BLUEPRINTS).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from clinic.models import User
from clinic.services.users import end_sessions, is_locked
from webhooks.ui.db import db

# Blueprints with their own authentication (bearer tokens, gateway signatures); nested
# blueprints under them inherit the exemption through request.blueprints.
TOKEN_AUTH_BLUEPRINTS = frozenset({"api_v1", "public"})
OPEN_ENDPOINTS = frozenset({"auth.login", "static"})

_UID = "uid"
_STAMP = "stamp"
_SINCE = "since"
# A working day and a bit; the cookie's own lifetime is the same (webhooks/ui/__init__.py).
SESSION_LIFETIME = timedelta(hours=12)

F = TypeVar("F", bound=Callable[..., object])


def session_stamp(user: User) -> str:
    seed = f"{user.id}:{user.password_hash}:{user.session_epoch or 0}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def login_user(user: User) -> None:
    # A fresh session on login, so a session id planted before login is worthless.
    session.clear()
    session[_UID] = user.id
    session[_STAMP] = session_stamp(user)
    session[_SINCE] = int(time.time())
    session.permanent = True
    g.mis_user = user


def logout_user() -> None:
    """End this session and every other session of the user (the caller commits)."""
    user = current_user()
    if user is not None:
        end_sessions(user)
    session.clear()
    g.mis_user = None


def current_user() -> User | None:
    return g.get("mis_user")


def is_token_auth_request() -> bool:
    return bool(TOKEN_AUTH_BLUEPRINTS.intersection(request.blueprints))


def _load_user() -> None:
    g.mis_user = None
    if is_token_auth_request() or request.endpoint == "static":
        return
    uid = session.get(_UID)
    if not isinstance(uid, int):
        return
    since = session.get(_SINCE)
    fresh = isinstance(since, int) and 0 <= time.time() - since < SESSION_LIFETIME.total_seconds()
    user = db().get(User, uid) if fresh else None
    valid = (
        user is not None
        and user.is_active
        and not is_locked(user)
        and session.get(_STAMP) == session_stamp(user)
    )
    if valid:
        g.mis_user = user
    else:
        session.clear()


def _require_login() -> Response | None:
    if is_token_auth_request() or request.endpoint in OPEN_ENDPOINTS or request.endpoint is None:
        return None
    if current_user() is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def require_admin() -> None:
    """A blueprint's before_request: registrars get the Russian 403 page."""
    user = current_user()
    if user is None:
        abort(401)
    if not user.is_admin:
        abort(403)


def admin_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: object, **kwargs: object) -> object:
        require_admin()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after login (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def init_auth(app: Flask) -> None:
    """Install the session gates; called before CSRF so anonymous posts go to the login page."""
    app.before_request(_load_user)
    app.before_request(_require_login)
