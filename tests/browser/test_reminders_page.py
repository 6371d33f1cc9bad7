"""«СМС → Правила напоминаний» in chromium: the admin reaches it from the menu, a wrong
value comes back at its field in Russian with what was typed kept, the saved rule is listed;
a registrar gets the Russian 403 page. Screenshots in /tmp/mis-shots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Employee, ReminderRule, Service, SmsTemplate
from clinic.services.settings import get_settings

from .conftest import ADMIN_PASSWORD, REGISTRAR_PASSWORD
from .test_web_shell import log_in

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/mis-shots")


@pytest.fixture()
def catalog(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        settings = get_settings(s)
        settings.sms_quiet_from, settings.sms_quiet_to = 21, 9
        s.add_all([
            Employee(last_name="Терапевтов", first_name="Олег", patronymic="Ильич", specialty="Терапевт"),
            Employee(last_name="Хирургова", first_name="Нина", patronymic="", specialty="Хирург"),
            Service(code="B01", name="Приём терапевта первичный", duration_min=20, price=0),
            SmsTemplate(name="Напоминание за сутки", recipient_type="patient", is_default=True,
                        body="{patient_first_patronymic}, ждём вас {date} в {time}. {clinic}"),
        ])  # fmt: skip


def test_admin_adds_a_rule_with_a_mistake_then_fixes_it(
    page: Any, live_url: str, users: Any, catalog: None, sessions: sessionmaker[Session]
) -> None:
    SHOTS.mkdir(exist_ok=True)
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.get_by_text("СМС", exact=True).first.click()
    page.get_by_role("link", name="Правила напоминаний").click()
    expect(page.get_by_role("heading", name="Правила напоминаний")).to_be_visible()
    page.get_by_test_id("rule-new").click()

    page.get_by_label("Наименование").fill("Вечером накануне")
    page.get_by_test_id("moment-evening").check()
    page.get_by_test_id("evening_time").fill("22:30")
    page.get_by_label("Подразделение (специальность врача)").select_option("Хирург")
    page.get_by_label("Шаблон СМС").select_option(label="Напоминание за сутки")
    page.get_by_test_id("rule-save").click()
    error = page.locator("[data-error-for=evening_time]")
    expect(error).to_contain_text("Время попадает в тихие часы (21:00–09:00)")
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    expect(page.get_by_label("Наименование")).to_have_value("Вечером накануне")  # kept
    expect(page.get_by_label("Подразделение (специальность врача)")).to_have_value("Хирург")
    page.screenshot(path=str(SHOTS / "reminders-form-error.png"), full_page=True)
    with sessions() as s:
        assert s.scalar(select(ReminderRule.id)) is None  # nothing saved

    page.get_by_test_id("evening_time").fill("19:00")
    page.get_by_test_id("rule-save").click()
    expect(page.get_by_text("Правило «Вечером накануне» сохранено")).to_be_visible()
    page.screenshot(path=str(SHOTS / "reminders-form-saved.png"), full_page=True)
    page.get_by_role("link", name="← К списку").click()
    row = page.get_by_test_id("rule-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Накануне в 19:00")
    expect(row).to_contain_text("подразделение «Хирург»")
    expect(row).to_contain_text("включено")
    page.screenshot(path=str(SHOTS / "reminders-list.png"), full_page=True)
    with sessions() as s:
        rule = s.scalars(select(ReminderRule)).one()
        assert (rule.moment, rule.evening_time, rule.department, rule.channel) == (
            "evening",
            "19:00",
            "Хирург",
            "sms",
        )


def test_registrar_is_refused(page: Any, live_url: str, users: Any) -> None:
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    expect(page.get_by_role("link", name="Правила напоминаний")).to_have_count(0)
    reply = page.goto(live_url + "/sms/reminders")
    assert reply is not None and reply.status == 403
    expect(page.locator("body")).to_contain_text("Эта страница доступна только администратору")
