"""The patient card's «История пациента» in chromium: every kind in one list by time on the
clinic's clock (the server in New York, the clinic in Vladivostok), the kind filter, and
paging back through a long history. Screenshots in /tmp/mis-shots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, Call, Employee, Patient, Service, SmsMessage
from clinic.services.settings import get_settings

from .conftest import REGISTRAR_PASSWORD
from .test_web_shell import log_in

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/mis-shots")
BASE = datetime(2025, 5, 22, 9, 10, tzinfo=UTC)  # 19:10 in Vladivostok
EXTRA_SMS = 40


def _sms(patient: int, n: int, at: datetime, **extra: object) -> SmsMessage:
    values: dict[str, object] = dict(
        idempotency_key=f"k{n}", source="single", patient_id=patient, phone="79161234567",
        text=f"Сообщение {n}", parts=1, state="sent", note="", created_at=at, attempts=1,
        gateway_answer="", delivery_text="", delivery_final=False,
    )  # fmt: skip
    values.update(extra)
    return SmsMessage(**values)


@pytest.fixture()
def patient_id(sessions: sessionmaker[Session], server_in_new_york: None) -> int:
    with transaction(sessions) as s:
        get_settings(s).timezone = "Asia/Vladivostok"
        doctor = Employee(last_name="Терапевтов", first_name="Олег", patronymic="Ильич", specialty="Терапевт")
        service = Service(code="B01", name="Приём терапевта первичный", duration_min=20, price=0)
        patient = Patient(last_name="Иванов", first_name="Пётр", patronymic="Сергеевич", phone="+79161234567")
        s.add_all([doctor, service, patient])
        s.flush()
        s.add(Appointment(patient_id=patient.id, doctor_id=doctor.id, service_id=service.id,
                          starts_at=datetime(2025, 5, 23, 10, 0), extra_info="Запись подтверждена",
                          cancel_reason="", confirmation_status="confirmed", confirmation_source="registrar",
                          confirmed_at=BASE + timedelta(minutes=30)))  # fmt: skip
        s.add(Call(uid="c-1", direction="inbound", patient_id=patient.id, number="+79161234567",
                   state="ended", result="missed", started_at=BASE + timedelta(minutes=20)))  # fmt: skip
        s.add(_sms(patient.id, 0, BASE, delivery_code=103, delivery_text="Доставлено", delivery_final=True))
        for n in range(1, EXTRA_SMS + 1):
            s.add(_sms(patient.id, n, BASE - timedelta(days=n)))
        return patient.id


def test_history_by_time_filter_and_paging(page: Any, live_url: str, users: Any, patient_id: int) -> None:
    SHOTS.mkdir(exist_ok=True)
    log_in(page, live_url, "reg", REGISTRAR_PASSWORD)
    page.goto(f"{live_url}/patients/{patient_id}")
    items = page.get_by_test_id("timeline-item")
    expect(items).to_have_count(30)
    kinds = [items.nth(i).get_attribute("data-kind") for i in range(4)]
    assert kinds == ["appointment", "status", "call", "sms"]
    expect(items.nth(0)).to_contain_text("23.05.2025 10:00")  # the visit, the clinic's wall clock
    expect(items.nth(1)).to_contain_text("22.05.2025 19:40")  # confirmed at 09:40 UTC
    expect(items.nth(1)).to_contain_text("Источник: регистратор")
    expect(items.nth(2)).to_contain_text("Пропущен")
    expect(items.nth(3)).to_contain_text("Доставлено")
    page.screenshot(path=str(SHOTS / "timeline-card.png"), full_page=True)

    page.get_by_test_id("kind-sms").uncheck()
    page.get_by_test_id("kind-appointment").uncheck()
    page.get_by_test_id("timeline-apply").click()
    expect(items).to_have_count(2)
    assert {items.nth(i).get_attribute("data-kind") for i in range(2)} == {"status", "call"}
    expect(page.get_by_test_id("kind-sms")).not_to_be_checked()
    page.screenshot(path=str(SHOTS / "timeline-filtered.png"), full_page=True)

    page.goto(f"{live_url}/patients/{patient_id}")
    seen = [t for t in items.all_inner_texts()]
    page.get_by_test_id("timeline-more").click()
    expect(items).to_have_count(EXTRA_SMS + 4 - 30)
    seen += items.all_inner_texts()
    expect(page.get_by_test_id("timeline-more")).to_have_count(0)
    expect(page.get_by_test_id("timeline-newest")).to_be_visible()
    assert len(seen) == EXTRA_SMS + 4 and len(set(seen)) == len(seen)
    assert "Сообщение 40" in seen[-1]
    page.screenshot(path=str(SHOTS / "timeline-older.png"), full_page=True)
