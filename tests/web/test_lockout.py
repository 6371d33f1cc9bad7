"""Lock-out after N wrong passwords («Блокировать учетные записи пользователей») and unlocking.

The growing delays between attempts (tests/web/test_login_throttle.py) are waited out here by
moving their end into the past, as the passing of time would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import LoginThrottle, User, utcnow
from clinic.services.settings import get_settings

from .support import REGISTRAR_PASSWORD, Web


def _set_security(sessions: sessionmaker[Session], **values: Any) -> None:
    with transaction(sessions) as session:
        row = get_settings(session)
        for key, value in values.items():
            setattr(row, key, value)


def _wait_out_delays(sessions: sessionmaker[Session]) -> None:
    """The delay between attempts has passed (a lock is the user row's, and stays)."""
    with transaction(sessions) as session:
        session.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))


def test_default_lockout_is_ten_attempts(
    anon: Web, registrar_id: int, fetch: Callable[..., Any], sessions: sessionmaker[Session]
) -> None:
    for attempt in range(1, 10):
        _wait_out_delays(sessions)
        response = anon.login("reg", f"wrong-{attempt}")
        assert response.status_code == 401, attempt
        assert "Неверный логин или пароль" in response.text, attempt
    assert fetch(User, registrar_id).locked_at is None
    assert fetch(User, registrar_id).failed_logins == 9
    _wait_out_delays(sessions)
    tenth = anon.login("reg", "wrong-10")
    assert "Вход временно заблокирован" in tenth.text
    assert fetch(User, registrar_id).locked_at is not None


def test_locked_user_cannot_log_in_with_the_right_password(
    anon: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    _set_security(sessions, lockout_enabled=True, lockout_attempts=3)
    for _ in range(3):
        anon.login("reg", "wrong-password")
    _wait_out_delays(sessions)
    response = anon.login("reg", REGISTRAR_PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 14 * 60
    assert "Вход временно заблокирован" in response.text
    assert anon.get("/schedule").status_code == 302


def test_success_resets_the_counter(
    anon: Web, registrar_id: int, sessions: Any, fetch: Callable[..., Any]
) -> None:
    _set_security(sessions, lockout_enabled=True, lockout_attempts=3)
    anon.login("reg", "wrong-1")
    anon.login("reg", "wrong-2")
    assert anon.login("reg", REGISTRAR_PASSWORD).status_code == 302
    assert fetch(User, registrar_id).failed_logins == 0


def test_no_lock_when_lockout_is_off(
    anon: Web, registrar_id: int, sessions: Any, fetch: Callable[..., Any]
) -> None:
    _set_security(sessions, lockout_enabled=False, lockout_attempts=2)
    for _ in range(5):
        _wait_out_delays(sessions)
        anon.login("reg", "wrong-password")
    assert fetch(User, registrar_id).locked_at is None
    _wait_out_delays(sessions)
    assert anon.login("reg", REGISTRAR_PASSWORD).status_code == 302


def test_locked_user_session_ends(registrar_web: Web, anon: Web, sessions: Any) -> None:
    """Someone guessing at the account from elsewhere also ends the owner's open session."""
    _set_security(sessions, lockout_enabled=True, lockout_attempts=2)
    anon.login("reg", "wrong-1")
    anon.login("reg", "wrong-2")
    assert registrar_web.get("/schedule").status_code == 302


def test_admin_sees_the_lock_and_unlocks(
    admin_web: Web, anon: Web, registrar_id: int, sessions: Any, fetch: Callable[..., Any]
) -> None:
    _set_security(sessions, lockout_enabled=True, lockout_attempts=2)
    anon.login("reg", "wrong-1")
    anon.login("reg", "wrong-2")
    listing = admin_web.text("/admin/users")
    assert "Заблокирован" in listing
    assert f"/admin/users/{registrar_id}/unlock" in listing
    response = admin_web.post_form(f"/admin/users/{registrar_id}/unlock", {}, page="/admin/users")
    assert response.status_code == 302
    assert "разблокирован" in admin_web.text(response.location)
    user = fetch(User, registrar_id)
    assert user.locked_at is None
    assert user.failed_logins == 0
    assert anon.login("reg", REGISTRAR_PASSWORD).status_code == 302


def test_unlock_from_the_user_page(admin_web: Web, anon: Web, registrar_id: int, sessions: Any) -> None:
    _set_security(sessions, lockout_enabled=True, lockout_attempts=1)
    anon.login("reg", "wrong-1")
    page = admin_web.text(f"/admin/users/{registrar_id}")
    assert "Учетная запись заблокирована" in page
    response = admin_web.post_form(
        f"/admin/users/{registrar_id}/unlock", {"back": "edit"}, page=f"/admin/users/{registrar_id}"
    )
    assert response.location == f"/admin/users/{registrar_id}"
    assert anon.login("reg", REGISTRAR_PASSWORD).status_code == 302


def test_registrar_cannot_unlock(registrar_web: Web, make_user: Callable[..., int], sessions: Any) -> None:
    other = make_user("other", failed_logins=10, locked_at=utcnow())
    token = registrar_web.csrf("/schedule")
    response = registrar_web.client.post(f"/admin/users/{other}/unlock", data={"csrf_token": token})
    assert response.status_code == 403
    with transaction(sessions) as session:
        assert session.get(User, other).locked_at is not None
