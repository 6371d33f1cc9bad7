"""The web shell in a real browser: login, the day's appointments, saving settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.services.settings import get_settings

from .conftest import ADMIN_PASSWORD, REGISTRAR_PASSWORD, RecordingApplier

pytestmark = pytest.mark.browser


def log_in(page: Any, base: str, login: str, password: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()


def test_login_and_the_days_appointments(page: Any, live_url: str, users: Any, day_schedule: Any) -> None:
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    expect(page).to_have_url(live_url + "/schedule")
    expect(page.get_by_role("heading", name="Планировщик записи на прием")).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_have_text("Сидорова Мария Ивановна")
    expect(page.get_by_test_id("current-role")).to_have_text("Регистратор")
    expect(page.get_by_role("link", name="ЛПУ → Параметры")).to_have_count(0)

    page.get_by_label("Дата").fill("2025-05-22")  # the date input submits itself on change
    expect(page).to_have_url(re.compile(r"date=2025-05-22"))
    expect(page.get_by_test_id("day-title")).to_contain_text("Четверг, 22.05.2025")
    rows = page.get_by_test_id("appointment")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text="Иванов Пётр Сергеевич")
    expect(first).to_contain_text("09:30")
    expect(first).to_contain_text("Каб. 105 Терапия")
    expect(first).to_contain_text("Приём терапевта первичный")
    expect(first).to_contain_text("Записан")
    expect(first).to_contain_text("Запись подтверждена")
    expect(page.get_by_test_id("doctor-column")).to_have_count(2)

    first.get_by_role("link", name="Иванов Пётр Сергеевич").click()
    expect(page.get_by_test_id("patient-name")).to_have_text("Иванов Пётр Сергеевич")
    expect(page.get_by_test_id("patient-phone")).to_have_text("+7 916 123-45-67")

    page.get_by_role("link", name="Пациенты").click()
    page.get_by_label("Фамилия, имя или телефон").fill("8 916 123")
    page.get_by_role("button", name="Найти").click()
    expect(page.get_by_test_id("patient-results")).to_contain_text("Иванов Пётр Сергеевич")


def test_wrong_password_shows_the_russian_message(page: Any, live_url: str, users: Any) -> None:
    log_in(page, live_url, "reg", "wrong-password")
    expect(page.get_by_test_id("login-error")).to_have_text("Неверный логин или пароль")


def test_settings_saved_and_bad_port_refused(
    page: Any, live_url: str, users: Any, sessions: sessionmaker[Session], applier: RecordingApplier
) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    expect(page.get_by_test_id("current-role")).to_have_text("Администратор")
    page.locator("summary", has_text="Администрирование").click()  # open the menu group
    page.get_by_role("link", name="ЛПУ → Параметры").click()
    expect(page.get_by_role("heading", name="ЛПУ → Параметры")).to_be_visible()

    page.get_by_role("tab", name="Сервис").click()
    expect(page.get_by_label("Наименование", exact=True)).to_be_hidden()  # other tabs fold away
    page.get_by_label("Порт SIP").fill("5070")
    page.get_by_label("Домен SIP").fill("pbx.clinic.ru")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Параметры сохранены")).to_be_visible()
    expect(page.get_by_text("АТС: конфигурация применена")).to_be_visible()
    expect(page.get_by_label("Порт SIP")).to_be_visible()  # back on the «Сервис» tab
    expect(page.get_by_label("Порт SIP")).to_have_value("5070")
    with transaction(sessions) as session:
        row = get_settings(session)
        assert (row.sip_port, row.sip_domain) == (5070, "pbx.clinic.ru")
    assert applier.calls == [users["admin"]]

    page.get_by_label("Порт SIP").fill("50a70")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Порт SIP: укажите целое число от 1 до 65535")).to_be_visible()
    expect(page.get_by_label("Порт SIP")).to_have_value("50a70")
    with transaction(sessions) as session:
        assert get_settings(session).sip_port == 5070
    assert len(applier.calls) == 1


def test_registrar_sees_the_russian_403(page: Any, live_url: str, users: Any) -> None:
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    expect(page.get_by_test_id("current-user")).to_be_visible()
    response = page.goto(live_url + "/admin/settings")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Доступ запрещён")).to_be_visible()


def test_long_names_stay_inside_their_doctors_column(
    page: Any, live_url: str, users: Any, day_schedule: Any, sessions: sessionmaker[Session]
) -> None:
    from clinic.models import Patient, Service

    with transaction(sessions) as s:
        for service in s.query(Service):
            service.name = "Приём (осмотр, консультация) врача-терапевта первичный с оформлением справки " * 2
        for patient in s.query(Patient):
            patient.last_name = "Константинопольская-Преображенская"
    page.set_viewport_size({"width": 1024, "height": 800})
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    page.goto(live_url + "/schedule?date=2025-05-22")
    expect(page.get_by_test_id("appointment")).to_have_count(2)
    # each appointment block lies inside its own doctor's column of the board, its «⋯» menu
    # inside the block: nothing spills under the next doctor's column
    geometry = page.eval_on_selector_all(
        "[data-testid=appointment]",
        """blocks => blocks.map(b => {
             const col = document.querySelector(
               `[data-testid=doctor-column][data-doctor-id="${b.dataset.doctorId}"]`).getBoundingClientRect();
             const box = b.getBoundingClientRect();
             const menu = b.querySelector('summary').getBoundingClientRect();
             return [col.left, col.right, box.left, box.right, menu.left, menu.right];
           })""",
    )
    assert len(geometry) == 2
    for col_left, col_right, left, right, menu_left, menu_right in geometry:
        assert col_left - 1 <= left and right <= col_right + 1, geometry
        assert left <= menu_left and menu_right <= right + 1, geometry
    # the long service name is cut, the whole of it in the tooltip
    service = page.locator("[data-testid=appointment] .appt-service[title]").first
    assert service.get_attribute("title").startswith("Приём (осмотр, консультация)")
