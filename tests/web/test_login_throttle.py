"""Logins: growing delays per login name and per address, a lock that ends by itself, answers
that never tell which logins exist, and sessions that really end (issue 12, points 1-2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import as_aware
from clinic.db import transaction
from clinic.models import LoginThrottle, User, utcnow
from clinic.services import login_throttle as throttle
from clinic.services.auth import authenticate
from clinic.services.settings import update_settings
from clinic.services.users import create_user

from .support import REGISTRAR_PASSWORD, Web


def _attempt(sessions: sessionmaker[Session], login: str, password: str, addr: str, now: Any) -> Any:
    with transaction(sessions) as session:
        return authenticate(session, login, password, addr, now)


@pytest.fixture()
def reg1(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        update_settings(session, {"lockout_attempts": 10})
        create_user(session, {"login": "reg1", "password": "Reg-pass-1"})


def test_delays_grow_after_the_free_attempts(sessions: sessionmaker[Session], reg1: None) -> None:
    now = utcnow()
    for _ in range(throttle.LOGIN.free):
        assert _attempt(sessions, "reg1", "wrong", "10.0.0.1", now).retry_after == 0
    delays = []
    for _ in range(4):
        _attempt(sessions, "reg1", "wrong", "10.0.0.1", now)
        with transaction(sessions) as session:
            row = session.get(LoginThrottle, throttle.login_key("reg1"))
            assert row is not None and row.blocked_until is not None
            delays.append(round((as_aware(row.blocked_until) - now).total_seconds()))
        refused = _attempt(sessions, "reg1", "Reg-pass-1", "10.0.0.1", now)  # even the right password
        assert not refused.ok and refused.retry_after > 0 and "Повторите через" in (refused.error or "")
        now = as_aware(row.blocked_until) + timedelta(seconds=1)  # the delay passes
    assert delays == [2, 4, 8, 16]
    assert _attempt(sessions, "reg1", "Reg-pass-1", "10.0.0.1", now).ok


def test_unknown_and_real_logins_get_the_same_answers(sessions: sessionmaker[Session], reg1: None) -> None:
    now = utcnow()
    for step in range(12):
        real = _attempt(sessions, "reg1", "wrong", "10.0.0.2", now)
        ghost = _attempt(sessions, "nobody", "wrong", "10.0.0.3", now)
        assert (real.error, real.retry_after) == (ghost.error, ghost.retry_after), step
        now += timedelta(minutes=6)  # past every delay, inside the lock
    assert "Вход временно заблокирован" in (real.error or "")


def test_the_lock_ends_by_itself_and_ends_sessions(sessions: sessionmaker[Session], reg1: None) -> None:
    now = utcnow()
    for _ in range(10):
        _attempt(sessions, "reg1", "wrong", "10.0.0.4", now)
        now += timedelta(minutes=6)
    with transaction(sessions) as session:
        user = session.scalars(select(User).where(User.login == "reg1")).one()
        locked_at, epoch = as_aware(user.locked_at), user.session_epoch
    assert epoch == 1  # its open sessions ended
    assert not _attempt(sessions, "reg1", "Reg-pass-1", "10.0.0.4", locked_at + timedelta(minutes=14)).ok
    assert _attempt(sessions, "reg1", "Reg-pass-1", "10.0.0.4", locked_at + timedelta(minutes=16)).ok


def test_one_address_guessing_many_logins_is_slowed(sessions: sessionmaker[Session], reg1: None) -> None:
    now = utcnow()
    for n in range(throttle.ADDRESS.free + 1):
        _attempt(sessions, f"user{n}", "wrong", "10.0.0.5", now)
    assert _attempt(sessions, "reg1", "Reg-pass-1", "10.0.0.5", now).retry_after > 0
    assert _attempt(sessions, "reg1", "Reg-pass-1", "10.0.0.6", now).ok  # another address is not


def test_throttled_login_page_answers_429(anon: Web, registrar_id: int) -> None:
    for _ in range(throttle.LOGIN.free + 1):
        anon.login("reg", "wrong")
    response = anon.login("reg", REGISTRAR_PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "Слишком много неудачных попыток входа" in response.text


def test_admin_unlock_clears_the_delay(
    admin_web: Web, anon: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    for _ in range(10):
        anon.login("reg", "wrong")
        with transaction(sessions) as session:
            if session.get(User, registrar_id).locked_at is None:  # only the delays pass
                session.execute(update(LoginThrottle).values(blocked_until=None))
    admin_web.post_form(f"/admin/users/{registrar_id}/unlock", {}, page="/admin/users")
    assert anon.login("reg", REGISTRAR_PASSWORD).status_code == 302


def test_cookie_settings_take_effect(app: Flask, registrar_id: int) -> None:
    response = Web(app.test_client()).login("reg", REGISTRAR_PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Secure" not in cookie
    assert app.permanent_session_lifetime == timedelta(hours=12)


def test_secure_cookie_behind_tls(config: Any, sessions: sessionmaker[Session], registrar_id: int) -> None:
    from dataclasses import replace

    from webhooks.app import create_app

    app = create_app(replace(config, cookie_secure=True), session_factory=sessions)
    response = Web(app.test_client()).login("reg", REGISTRAR_PASSWORD)
    assert "Secure" in response.headers["Set-Cookie"]


def test_logout_ends_a_copied_cookie(app: Flask, registrar_id: int) -> None:
    browser, thief = Web(app.test_client()), app.test_client()
    browser.login("reg", REGISTRAR_PASSWORD)
    stolen = browser.client.get_cookie("session")
    assert stolen is not None
    thief.set_cookie("session", stolen.value)
    assert thief.get("/schedule").status_code == 200
    browser.post_form("/logout", {}, page="/schedule")
    assert thief.get("/schedule").status_code == 302  # the same cookie no longer works


def test_a_session_ends_twelve_hours_after_login(app: Flask, registrar_id: int) -> None:
    web = Web(app.test_client())
    web.login("reg", REGISTRAR_PASSWORD)
    assert web.get("/schedule").status_code == 200
    with web.client.session_transaction() as sess:
        sess["since"] -= 12 * 3600 + 1
    assert web.get("/schedule").status_code == 302
