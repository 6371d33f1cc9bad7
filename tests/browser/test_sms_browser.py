"""SMS in a real browser: the send dialog from the scheduler's context menu, the template
editor with its live preview, and a mailing from draft to signed."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from smsru.support import API_ID, ServerThread, Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from clinic.config import Config
from clinic.db import transaction
from clinic.models import Appointment, Cabinet, ClinicSettings, Employee, Patient, SmsMessage, SmsTemplate
from clinic.sms import jobs
from clinic.worker.jobs import JobContext
from emulators.smsru import EmulatorOptions
from emulators.smsru import create_app as create_emulator
from webhooks.app import create_app

from .conftest import ADMIN_PASSWORD, REGISTRAR_PASSWORD

pytestmark = pytest.mark.browser

TOMORROW = date.today() + timedelta(days=1)


@pytest.fixture()
def sms() -> Iterator[Sms]:
    app = create_emulator(EmulatorOptions(api_id=API_ID, clock="manual", balance=Decimal("1234.50")))
    with httpx.Client(trust_env=False) as http:
        running = Sms(ServerThread(app).start(), app.extensions["smsru_emulator"], http)
        yield running
        running.server.stop()
        running.emulator.stop()


@pytest.fixture()
def sms_config(config: Config, sms: Sms) -> Config:
    return dataclasses.replace(config, smsru_url=sms.url)


@pytest.fixture()
def clinic(sessions: sessionmaker[Session], users: Any) -> dict[str, int]:
    with transaction(sessions) as s:
        s.add(
            ClinicSettings(
                name="Клиника Здоровье",
                sms_api_key=API_ID,
                sms_sender="Klinika",
                sms_quiet_from=0,
                sms_quiet_to=0,
            )
        )
        doctor = Employee(
            last_name="Смирнов", first_name="Андрей", patronymic="Викторович", specialty="Терапевт"
        )
        cabinet = Cabinet(number="12", name="Терапия")
        with_phone = Patient(
            last_name="Иванова", first_name="Мария", patronymic="Петровна", phone="+79161234567"
        )
        without = Patient(last_name="Петров", first_name="Олег", patronymic="", phone=None)
        s.add_all([doctor, cabinet, with_phone, without])
        s.add(
            SmsTemplate(
                name="Напоминание",
                recipient_type="patient",
                is_default=True,
                body="{patient_first_patronymic}, ждём вас {date} в {time}, врач {doctor}, {cabinet}.",
            )
        )
        s.flush()
        a = Appointment(
            patient_id=with_phone.id,
            doctor_id=doctor.id,
            cabinet_id=cabinet.id,
            starts_at=datetime.combine(TOMORROW, datetime.min.time()) + timedelta(hours=10),
        )
        b = Appointment(
            patient_id=without.id,
            doctor_id=doctor.id,
            cabinet_id=cabinet.id,  # the template names the cabinet
            starts_at=datetime.combine(TOMORROW, datetime.min.time()) + timedelta(hours=11),
        )
        s.add_all([a, b])
        s.flush()
        return {"appointment": a.id, "patient": with_phone.id}


@pytest.fixture()
def base(sms_config: Config, sessions: sessionmaker[Session], clinic: dict[str, int]) -> Iterator[str]:
    app = create_app(sms_config, session_factory=sessions)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-sms-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def log_in(page: Any, base: str, login: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(re.compile(r"/schedule"))


def test_send_dialog_from_the_scheduler(page: Any, base: str, sms: Sms, clinic: dict[str, int]) -> None:
    log_in(page, base, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{base}/schedule?date={TOMORROW.isoformat()}")
    row = page.get_by_test_id("appointment").filter(has_text="Иванова Мария Петровна")
    row.click(button="right")
    page.get_by_role("menuitem", name="Отправить СМС").click()
    dialog = page.get_by_test_id("sms-dialog")
    expect(dialog).to_be_visible()
    text = page.get_by_label("Текст сообщения")
    expect(text).to_have_value(
        f"Мария Петровна, ждём вас {TOMORROW:%d.%m.%Y} в 10:00, врач Смирнов А.В., каб. 12 Терапия."
    )
    expect(page.get_by_label("Номер телефона")).to_have_value("+79161234567")
    expect(page.get_by_test_id("sms-balance")).to_have_text("1234.50 ₽")
    text.fill("Мария Петровна, приём завтра в 10:00")
    expect(page.get_by_test_id("sms-counter")).to_have_text("36 символов, СМС: 1")
    page.get_by_label("Номер телефона").fill("8 (916) 765-43-21")
    page.get_by_test_id("sms-submit").click()
    result = page.get_by_test_id("sms-result")
    expect(result).to_contain_text("Отправлено")
    expect(result).not_to_contain_text(API_ID)
    assert [m["text"] for m in sms.messages(phone="79167654321")] == ["Мария Петровна, приём завтра в 10:00"]
    page.get_by_role("button", name="Обновить").click()
    expect(page.get_by_test_id("sms-balance")).to_have_text("1233.00 ₽")  # 1 part at 1.50 charged


def test_empty_text_is_refused_in_the_dialog(page: Any, base: str, sms: Sms, clinic: dict[str, int]) -> None:
    log_in(page, base, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{base}/patients/{clinic['patient']}")
    page.get_by_test_id("send-sms").click()
    page.get_by_label("Текст сообщения").fill("")
    page.get_by_test_id("sms-submit").click()
    expect(page.locator('[data-error-for="text"]')).to_have_text("Текст сообщения пуст")
    assert sms.messages() == []


def test_template_editor_with_live_preview(
    page: Any, base: str, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    log_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(base + "/sms/templates")
    page.get_by_test_id("template-new").click()
    page.get_by_label("Наименование").fill("Приглашение")
    body = page.get_by_label("Текст шаблона")
    body.fill("Здравствуйте, ")
    body.press("End")
    page.get_by_test_id("placeholder-patient_first_patronymic").click()
    body.press("End")
    body.type("! Ждём вас {date}. {оплата}")
    expect(body).to_have_value("Здравствуйте, {patient_first_patronymic}! Ждём вас {date}. {оплата}")
    preview = page.get_by_test_id("template-preview")
    expect(preview).to_contain_text("Здравствуйте, Мария Петровна! Ждём вас 15.03.2027. {оплата}")
    expect(page.get_by_test_id("preview-problems")).to_have_text("Неизвестное поле подстановки {оплата}")
    page.get_by_test_id("template-save").click()
    expect(page.locator('[data-error-for="body"]')).to_contain_text("Неизвестное поле подстановки {оплата}")
    body = page.get_by_label("Текст шаблона")
    body.fill("Здравствуйте, {patient_first_patronymic}! Ждём вас {date}.")
    expect(page.get_by_test_id("preview-count")).to_have_text("50 символов, СМС: 1")
    page.get_by_test_id("template-save").click()
    expect(page.get_by_text("Шаблон «Приглашение» сохранён")).to_be_visible()
    with sessions() as s:
        assert s.scalars(select(SmsTemplate.body).where(SmsTemplate.name == "Приглашение")).one() == (
            "Здравствуйте, {patient_first_patronymic}! Ждём вас {date}."
        )


def test_mailing_from_draft_to_signed(
    page: Any,
    base: str,
    sms: Sms,
    sms_config: Config,
    sessions: sessionmaker[Session],
    clinic: dict[str, int],
) -> None:
    log_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(base + "/sms/mailings")
    page.get_by_test_id("mailing-new").click()
    page.get_by_label("Период отбора с").fill(TOMORROW.isoformat())
    page.get_by_label("по", exact=True).fill(TOMORROW.isoformat())
    page.get_by_label("Шаблон").select_option(label="Напоминание")
    page.get_by_test_id("mailing-save").click()
    expect(page.get_by_test_id("mailing-state")).to_have_text("Черновик")
    page.get_by_test_id("mailing-fill").click()
    rows = page.get_by_test_id("mailing-recipient")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("no-phone")).to_have_count(1)
    expect(page.get_by_test_id("row-skip")).to_contain_text("Не будет отправлено: Нет номера телефона")
    page.get_by_test_id("row-phone").nth(1).fill("+7 903 111-22-33")
    page.get_by_test_id("mailing-save").click()
    expect(page.get_by_test_id("no-phone")).to_have_count(0)
    page.get_by_test_id("mailing-cost-button").click()
    expect(page.get_by_test_id("mailing-cost")).to_have_text("Стоимость рассылки: 4.50 ₽ за 3 СМС")
    page.get_by_test_id("mailing-more").locator("summary").click()
    page.get_by_test_id("mailing-send").click()
    expect(page.get_by_test_id("mailing-state")).to_have_text("Отправляется")
    jobs.send_due(JobContext(sms_config, sessions))  # what the worker does every 2 s
    expect(page.get_by_test_id("mailing-state")).to_have_text("Отправлено")  # the page refreshes itself
    expect(page.get_by_test_id("row-state").first).to_contain_text("Отправлено")
    page.get_by_test_id("mailing-sign").click()
    expect(page.get_by_test_id("mailing-row").first.get_by_test_id("mailing-state")).to_have_text("Подписан")
    assert sorted(m["phone"] for m in sms.messages()) == ["79031112233", "79161234567"]
    with sessions() as s:
        assert s.scalars(select(SmsMessage.state)).all() == ["sent", "sent"]
