"""Roles are enforced on the server: registrars get a Russian 403 on admin pages."""

from __future__ import annotations

import pytest

from .support import Web

ADMIN_PAGES = ("/admin/settings", "/admin/users", "/admin/users/new")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_registrar_gets_403_on_admin_pages(registrar_web: Web, url: str) -> None:
    response = registrar_web.get(url)
    assert response.status_code == 403
    assert "Доступ запрещён" in response.text
    assert "только администратору" in response.text


def test_registrar_gets_403_on_admin_user_page(registrar_web: Web, admin_id: int) -> None:
    assert registrar_web.get(f"/admin/users/{admin_id}").status_code == 403


def test_registrar_cannot_post_admin_forms(registrar_web: Web, admin_id: int) -> None:
    token = registrar_web.csrf("/schedule")
    settings = registrar_web.client.post("/admin/settings", data={"csrf_token": token, "name": "X"})
    user = registrar_web.client.post(
        f"/admin/users/{admin_id}", data={"csrf_token": token, "role": "registrar"}
    )
    create = registrar_web.client.post(
        "/admin/users/new", data={"csrf_token": token, "login": "intruder", "password": "Intruder-1"}
    )
    assert settings.status_code == user.status_code == create.status_code == 403


def test_registrar_menu_has_no_admin_items(registrar_web: Web) -> None:
    page = registrar_web.text("/schedule")
    assert "Планировщик" in page
    assert "Пациенты" in page
    assert "ЛПУ → Параметры" not in page
    assert "Пользователи системы" not in page


def test_admin_menu_and_pages(admin_web: Web) -> None:
    page = admin_web.text("/schedule")
    for title in ("Планировщик", "Пациенты", "ЛПУ → Параметры", "Пользователи системы"):
        assert title in page
    for url in ADMIN_PAGES:
        assert admin_web.get(url).status_code == 200, url


def test_unknown_page_is_a_russian_404(admin_web: Web) -> None:
    response = admin_web.get("/no-such-page")
    assert response.status_code == 404
    assert "Страница не найдена" in response.text


def test_huge_ids_are_a_404_not_a_database_error(admin_web: Web) -> None:
    for url in ("/patients/99999999999999999999999", "/admin/users/99999999999999999999999"):
        assert admin_web.get(url).status_code == 404, url
