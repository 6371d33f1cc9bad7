"""Login, logout, the session gate and CSRF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from sqlalchemy.orm import Session, sessionmaker

import webhooks.app
from clinic.db import transaction
from clinic.models import User
from clinic.security import hash_password
from webhooks.ui import register_ui

from .support import ADMIN_PASSWORD, REGISTRAR_PASSWORD, Web, csrf_from


def test_login_page_is_russian(anon: Web) -> None:
    page = anon.text("/login")
    assert "Вход в систему" in page
    assert 'name="password"' in page
    assert 'type="password"' in page


def test_login_success_goes_to_scheduler_and_shows_user_and_role(anon: Web, registrar_id: int) -> None:
    response = anon.login("reg", REGISTRAR_PASSWORD)
    assert response.status_code == 302
    assert response.location == "/schedule"
    page = anon.text("/schedule")
    assert "Планировщик записи на прием" in page
    assert "Сидорова Мария Ивановна" in page
    assert "Регистратор" in page


def test_login_is_case_insensitive_on_login(anon: Web, admin_id: int) -> None:
    assert anon.login("ADMIN", ADMIN_PASSWORD).status_code == 302
    assert "Администратор" in anon.text("/schedule")


def test_wrong_password_and_unknown_login_get_the_same_russian_message(anon: Web, admin_id: int) -> None:
    wrong = anon.login("admin", "not-the-password")
    unknown = anon.login("nobody", "whatever1")
    assert wrong.status_code == unknown.status_code == 401
    assert "Неверный логин или пароль" in wrong.text
    assert "Неверный логин или пароль" in unknown.text
    assert anon.get("/schedule").status_code == 302  # still anonymous


def test_failed_login_keeps_the_login_but_not_the_password(anon: Web, admin_id: int) -> None:
    page = anon.login("admin", "Secret-typed-1").text
    assert 'value="admin"' in page
    assert "Secret-typed-1" not in page


def test_empty_form_is_refused(anon: Web, admin_id: int) -> None:
    response = anon.login("", "")
    assert response.status_code == 401
    assert "Введите логин и пароль" in response.text


def test_anonymous_is_redirected_to_login_with_next(anon: Web) -> None:
    for url in ("/", "/schedule", "/patients", "/patients/1", "/admin/settings", "/admin/users"):
        response = anon.get(url)
        assert response.status_code == 302, url
        assert response.location.startswith("/login?next="), url


def test_next_is_followed_after_login(anon: Web, admin_id: int) -> None:
    anon.get("/admin/users")
    page = anon.client.get("/login?next=/admin/users")
    form = {"login": "admin", "password": ADMIN_PASSWORD, "next": "/admin/users"}
    response = anon.client.post("/login", data={**form, "csrf_token": csrf_from(page.text)})
    assert response.location == "/admin/users"


def test_next_to_another_site_is_ignored(app: Flask, admin_id: int) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        web = Web(app.test_client())
        form = {"login": "admin", "password": ADMIN_PASSWORD, "next": target}
        response = web.client.post("/login", data={**form, "csrf_token": web.csrf("/login")})
        assert response.location == "/schedule", target


def test_logout_ends_the_session(admin_web: Web) -> None:
    token = admin_web.csrf("/schedule")
    response = admin_web.client.post("/logout", data={"csrf_token": token})
    assert response.location == "/login"
    assert admin_web.get("/schedule").status_code == 302


def test_post_without_csrf_token_is_refused_in_russian(admin_web: Web, fetch: Callable[..., Any]) -> None:
    response = admin_web.client.post("/admin/settings", data={"name": "Взлом"})
    assert response.status_code == 400
    assert "Форма устарела" in response.text


def test_login_without_csrf_token_is_refused(anon: Web, admin_id: int) -> None:
    response = anon.client.post("/login", data={"login": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert anon.get("/schedule").status_code == 302


def test_deactivated_user_loses_the_session_and_cannot_log_in(
    admin_web: Web, registrar_web: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        session.get(User, registrar_id).is_active = False
    assert registrar_web.get("/schedule").status_code == 302
    response = registrar_web.login("reg", REGISTRAR_PASSWORD)
    assert response.status_code == 401
    assert "Учетная запись отключена" in response.text


def test_password_change_ends_other_sessions(
    registrar_web: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        session.get(User, registrar_id).password_hash = hash_password("Another-pass-2")
    assert registrar_web.get("/schedule").status_code == 302


def test_public_webhooks_need_no_session(anon: Web) -> None:
    response = anon.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_token_blueprints_skip_session_and_csrf_even_when_nested(config: Any, sessions: Any) -> None:
    """The МИС API (api_v1, with nested blueprints) and the public hooks authenticate themselves."""
    app = Flask("webhooks.app", root_path=str(Path(webhooks.app.__file__).parent))
    app.config["SECRET_KEY"] = "test"
    app.extensions["mis_sessions"] = sessions
    app.extensions["mis_pbx_apply"] = None
    public = Blueprint("public", __name__)
    api = Blueprint("api_v1", __name__)
    child = Blueprint("patients", __name__)
    public.add_url_rule("/hook", "hook", lambda: "hook ok", methods=["POST"])
    child.add_url_rule("/x", "x", lambda: "api ok", methods=["POST"])
    api.register_blueprint(child, url_prefix="/patients")
    app.register_blueprint(public)
    app.register_blueprint(api, url_prefix="/api/v1")
    register_ui(app)
    client = app.test_client()
    assert client.post("/hook").text == "hook ok"
    assert client.post("/api/v1/patients/x").text == "api ok"
    # The UI next to them still demands a session.
    assert client.post("/logout").status_code == 302
