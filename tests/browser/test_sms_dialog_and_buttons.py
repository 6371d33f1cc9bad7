"""Issue 10 in a real browser: link-styled buttons on the SMS pages can be seen (they were
white on white), and the registrar's «Отправить СМС» for a patient with two visits shows
which visit, the final text, the phone and the balance, and sends once however she clicks."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from smsru.support import Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, Patient, SmsMessage

from .conftest import ADMIN_PASSWORD, REGISTRAR_PASSWORD
from .test_sms_browser import TOMORROW, base, clinic, log_in, sms, sms_config  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

# where the screenshots go, to be looked at by a person (kept after the run)
SHOTS = Path(os.environ.get("SMS_SHOTS", "/tmp/sms-shots"))

# Contrast of a button's text against the first painted background behind it (WCAG).
CONTRAST = """(el) => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(",").map(parseFloat);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  let node = el, bg = null;
  while (node && node.nodeType === 1) {
    const c = parse(getComputedStyle(node).backgroundColor);
    if (c.a > 0) { bg = c; break; }
    node = node.parentElement;
  }
  bg = bg || { r: 255, g: 255, b: 255, a: 1 };
  const fg = parse(getComputedStyle(el).color);
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}"""
OLD_RULE = "button.link { color: #fff }"  # what made them white on white


def contrast(locator: Any) -> float:
    return float(locator.evaluate(CONTRAST))


def assert_readable(page: Any, locator: Any, name: str) -> None:
    """Visible, with text that stands out from its background (3:1, the WCAG minimum for
    controls); and the same check does catch the old white rule on this very button."""
    expect(locator).to_be_visible()
    ratio = contrast(locator)
    assert ratio >= 3.0, f"{name}: contrast {ratio:.2f}"
    style = page.add_style_tag(content=OLD_RULE)
    assert contrast(locator) < 1.5, f"{name}: the check would not see white on white"
    style.evaluate("(el) => el.remove()")
    assert contrast(locator) == pytest.approx(ratio)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_link_buttons_on_sms_pages_are_visible(page: Any, base: str, clinic: dict[str, int]) -> None:  # noqa: F811
    log_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(f"{base}/sms/send?appointment_id={clinic['appointment']}")
    assert_readable(page, page.get_by_role("button", name="Обновить"), "«Обновить» (баланс)")
    shot(page, "sms-dialog")

    page.goto(f"{base}/sms/templates/new")
    fields = page.locator(".sms-placeholders button.link")
    expect(fields).to_have_count(10)
    for i in range(fields.count()):
        assert_readable(page, fields.nth(i), f"поле шаблона {fields.nth(i).inner_text()}")
    shot(page, "sms-template-form")

    page.goto(f"{base}/sms/mailings/new")
    page.get_by_label("Период отбора с").fill(TOMORROW.isoformat())
    page.get_by_label("по", exact=True).fill(TOMORROW.isoformat())
    expect(page.get_by_label("Шаблон")).to_have_value(re.compile(r"\d+"))  # the default, preselected
    page.get_by_test_id("mailing-save").click()
    page.get_by_test_id("mailing-fill").click()
    expect(page.get_by_test_id("mailing-recipient")).to_have_count(2)
    remove = page.get_by_title("Удалить строку")
    for i in range(remove.count()):
        assert_readable(page, remove.nth(i), f"«✕» строки {i + 1}")
    # a row added by number alone: its final text is shown, and that it will not be sent
    page.get_by_label("Добавить получателя по номеру").fill("+7 903 000-11-22")
    page.get_by_test_id("add-row").click()
    skip = page.get_by_test_id("mailing-recipient").nth(2).get_by_test_id("row-skip")
    expect(skip).to_be_visible()
    expect(skip).to_contain_text("Не будет отправлено: Не заполнены поля шаблона")
    assert contrast(skip) >= 4.5
    # left out: the patient without a phone, and the row with empty template fields
    expect(page.get_by_test_id("mailing-summary")).to_contain_text("Не будут отправлены: 2 из 3")
    shot(page, "sms-mailing-form")


@pytest.fixture()
def two_visits(sessions: sessionmaker[Session], clinic: dict[str, int]) -> int:  # noqa: F811
    """A second visit of the same patient tomorrow, at 15:00 with another cabinet-less slot."""
    with transaction(sessions) as s:
        first = s.get(Appointment, clinic["appointment"])
        assert first is not None
        later = Appointment(
            patient_id=first.patient_id,
            doctor_id=first.doctor_id,
            cabinet_id=first.cabinet_id,
            starts_at=datetime.combine(TOMORROW, datetime.min.time()) + timedelta(hours=15),
        )
        s.add(later)
        s.flush()
        return later.id


def test_registrar_sees_the_visit_and_sends_once(
    page: Any,
    base: str,  # noqa: F811
    sms: Sms,  # noqa: F811
    sessions: sessionmaker[Session],
    clinic: dict[str, int],  # noqa: F811
    two_visits: int,
) -> None:
    log_in(page, base, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{base}/patients/{clinic['patient']}")
    page.get_by_test_id("send-sms").click()
    expect(page.get_by_test_id("sms-visit")).to_contain_text(f"{TOMORROW:%d.%m.%Y} 10:00")
    expect(page.get_by_test_id("sms-visit-choice")).to_have_count(2)
    expect(page.get_by_label("Номер телефона")).to_have_value("+79161234567")
    expect(page.get_by_test_id("sms-balance")).to_have_text("1234.50 ₽")
    page.get_by_test_id("sms-visits").get_by_role("link", name=re.compile("15:00")).click()
    text = page.get_by_label("Текст сообщения")
    expect(text).to_have_value(
        f"Мария Петровна, ждём вас {TOMORROW:%d.%m.%Y} в 15:00, врач Смирнов А.В., каб. 12 Терапия."
    )
    shot(page, "sms-dialog-two-visits")
    page.get_by_test_id("sms-submit").dblclick()  # an impatient double click
    expect(page.get_by_test_id("sms-result")).to_contain_text("Отправлено")
    shot(page, "sms-dialog-sent")
    assert len(sms.messages()) == 1
    page.get_by_test_id("sms-new").click()  # opening it again: the earlier SMS is said first
    expect(page.get_by_test_id("sms-already")).to_contain_text("Напоминание по этой записи уже отправлено")
    submit = page.get_by_test_id("sms-submit")
    expect(submit).to_have_text("Отправить повторно")
    expect(submit).to_be_disabled()
    page.get_by_test_id("sms-repeat").check()
    expect(submit).to_be_enabled()
    shot(page, "sms-dialog-repeat")
    submit.click()
    expect(page.get_by_test_id("sms-result")).to_contain_text("Отправлено")
    assert len(sms.messages()) == 2
    with sessions() as s:
        assert set(s.scalars(select(SmsMessage.appointment_id))) == {two_visits}


def test_no_consent_is_shown_before_anything_is_pressed(
    page: Any,
    base: str,  # noqa: F811
    sms: Sms,  # noqa: F811
    sessions: sessionmaker[Session],
    clinic: dict[str, int],  # noqa: F811
) -> None:
    with transaction(sessions) as s:
        s.get(Patient, clinic["patient"]).consent_sms = False  # type: ignore[union-attr]
    log_in(page, base, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{base}/patients/{clinic['patient']}")
    page.get_by_test_id("send-sms").click()
    blockers = page.get_by_test_id("sms-blockers")
    expect(blockers).to_be_visible()
    expect(blockers).to_contain_text("Пациент не дал согласия на СМС")
    submit = page.get_by_test_id("sms-submit")
    expect(submit).to_be_disabled()
    assert float(submit.evaluate("(el) => getComputedStyle(el).opacity")) <= 0.6  # looks disabled too
    expect(page.get_by_label("Текст сообщения")).to_be_disabled()
    shot(page, "sms-dialog-no-consent")
    assert sms.messages() == []
