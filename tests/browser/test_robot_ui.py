"""The voice robot in a real browser: the «Внешние информационные системы» form with
«Проверить подключение», and «Доп. информация» changing after Mango's callback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import clinic_now
from clinic.config import Config
from clinic.db import transaction
from clinic.mango import SystemClock
from clinic.models import Appointment, Employee, ExternalSystem, Patient, Service
from emulators.mango import EmulatorOptions, create_app, emulator_of
from webhooks.app import create_app as create_web_app

from .conftest import ADMIN_PASSWORD, REGISTRAR_PASSWORD
from .test_web_shell import log_in

pytestmark = pytest.mark.browser

KEY = "browser-vpbx-key"
SALT = "browser-vpbx-salt"
SECRET = "browser-hook-secret-0123456789"


class _Server:
    def __init__(self, app: Any) -> None:
        import threading

        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture()
def mango(config: Config, sessions: sessionmaker[Session]) -> Iterator[str]:
    """Our hooks listener and the Mango emulator wired to it; yields the emulator URL."""
    hooks = _Server(create_web_app(config, public_only=True, session_factory=sessions))
    app = create_app(
        EmulatorOptions.from_mapping(
            {
                "api_key": KEY,
                "api_salt": SALT,
                "clock": SystemClock(),
                "webhook_url": f"{hooks.url}/MangoOffice/UpdateStatus?token={SECRET}",
            }
        )
    )
    emu = _Server(app)
    yield emu.url
    emulator_of(app).shutdown()
    emu.stop()
    hooks.stop()


def test_directory_form_and_check_connection(page: Any, live_url: str, users: Any, mango: str) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.locator("summary", has_text="Администрирование").click()  # open the menu group
    page.get_by_role("link", name="Внешние информационные системы").click()
    expect(page.get_by_role("heading", name="Внешние информационные системы")).to_be_visible()
    page.get_by_role("link", name="Добавить Mango Office").click()

    page.get_by_label("Уникальный код").fill(KEY)
    page.get_by_label("Ключ авторизации").fill(SALT)
    page.get_by_label("ID кампании исходящего обзвона").fill("кампания")
    page.get_by_label("Адрес API").fill(mango + "/vpbx/")
    page.get_by_label("Секрет вебхука").fill(SECRET)
    page.get_by_role("button", name="Сохранить").click()

    expect(page.get_by_test_id("form-errors")).to_be_visible()
    expect(page.locator('[data-error-for="campaign_id"]')).to_have_text(
        "ID кампании — целое положительное число"
    )
    for secret in ("Ключ авторизации", "Уникальный код", "Секрет вебхука"):  # never sent back
        expect(page.get_by_label(secret)).to_have_value("")
    assert KEY not in page.content() and SECRET not in page.content()

    page.get_by_label("Уникальный код").fill(KEY)
    page.get_by_label("Секрет вебхука").fill(SECRET)
    page.get_by_label("Ключ авторизации").fill(SALT)
    page.get_by_label("ID кампании исходящего обзвона").fill("56919")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_role("status").filter(has_text="Внешняя система сохранена")).to_be_visible()
    expect(page.get_by_text("Ключ задан; оставьте пустым, чтобы не менять.")).to_be_visible()

    page.get_by_role("button", name="Проверить подключение").click()
    expect(page.get_by_role("status").filter(has_text="Подключение установлено")).to_contain_text(
        "Время = 5901"
    )
    expect(page.get_by_text("ID поля: 5905")).to_be_visible()

    page.get_by_role("link", name="← К списку").click()
    row = page.get_by_test_id("system-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("56919")
    expect(row).to_contain_text("успешно")


@pytest.fixture()
def tomorrow_appointment(sessions: sessionmaker[Session], mango: str) -> tuple[int, str]:
    with transaction(sessions) as session:
        day = clinic_now(session).date() + timedelta(days=1)
        session.add(
            ExternalSystem(
                api_key=KEY,
                api_salt=SALT,
                campaign_id=56919,
                base_url=mango + "/vpbx/",
                field_names="",
                field_ids="",
                webhook_secret=SECRET,
                webhook_ips="",
                last_check_message="",
            )
        )
        doctor = Employee(last_name="Терапевтов", first_name="Олег", patronymic="", specialty="Терапевт")
        patient = Patient(last_name="Иванов", first_name="Пётр", patronymic="Сергеевич", phone="+79161234567")
        service = Service(code="B01", name="Приём терапевта", duration_min=20, price=0)
        session.add_all([doctor, patient, service])
        session.flush()
        appointment = Appointment(
            patient_id=patient.id,
            doctor_id=doctor.id,
            service_id=service.id,
            starts_at=datetime.combine(day, time(10, 30)),
        )
        session.add(appointment)
        session.flush()
        return appointment.id, day.isoformat()


def test_send_to_robot_from_the_context_menu_and_extra_info_after_the_callback(
    page: Any, live_url: str, users: Any, mango: str, tomorrow_appointment: tuple[int, str]
) -> None:
    appointment_id, day = tomorrow_appointment
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{live_url}/schedule?date={day}")
    row = page.get_by_test_id("appointment").filter(has_text="Иванов Пётр Сергеевич")
    expect(row.get_by_test_id("confirmation-badge")).to_have_count(0)

    row.click(button="right")  # ПКМ on the appointment
    item = page.get_by_role("menuitem", name="Отправить голосовому роботу")
    expect(item).to_be_visible()
    item.click()
    expect(page).to_have_url(re.compile(rf"/robot/appointments/{appointment_id}$"))
    page.get_by_role("button", name="Отправить голосовому роботу").click()
    expect(page.get_by_role("status")).to_contain_text("Отправлено голосовому роботу: задача Mango №")
    expect(page.get_by_test_id("robot-state")).to_contain_text("Отправлено")

    tasks = requests.get(mango + "/_emulator/tasks", timeout=10).json()["tasks"]
    [task] = [t for t in tasks if t["fields"]["comment"] == str(appointment_id)]
    call = requests.post(
        mango + "/_emulator/call", json={"task_id": task["task_id"], "digit": "1"}, timeout=30
    )
    assert call.json()["webhook"]["http_status"] == 200

    page.goto(f"{live_url}/schedule?date={day}")
    expect(row.get_by_test_id("confirmation-badge")).to_have_text("Запись подтверждена")
    expect(row.get_by_test_id("status-badge")).to_have_text("Записан")


def test_a_cancellation_through_the_robot_shows_the_appointment_cancelled(
    page: Any, live_url: str, users: Any, mango: str, tomorrow_appointment: tuple[int, str]
) -> None:
    appointment_id, day = tomorrow_appointment
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{live_url}/robot/appointments/{appointment_id}")
    page.get_by_role("button", name="Отправить голосовому роботу").click()
    expect(page.get_by_test_id("robot-state")).to_contain_text("Отправлено")
    tasks = requests.get(mango + "/_emulator/tasks", timeout=10).json()["tasks"]
    [task] = [t for t in tasks if t["fields"]["comment"] == str(appointment_id)]

    call = requests.post(
        mango + "/_emulator/call", json={"task_id": task["task_id"], "digit": "2"}, timeout=30
    )

    assert call.json()["webhook"]["http_status"] == 200
    page.goto(f"{live_url}/schedule?date={day}")
    card = page.locator(f"[data-testid=appointment][data-appointment-id='{appointment_id}']")
    expect(card.get_by_test_id("status-badge")).to_have_text("Отменён")
    expect(card.get_by_test_id("status-badge")).to_be_visible()
    expect(card).to_contain_text("Причина: Отменено пациентом (робот Mango)")
