"""Fixtures for the reminder rules: the sms.ru emulator (from the SMS tests), a clinic in
Moscow with quiet hours 21–9, rules built directly, and a clock the tests move by hand.
The `admin`/`reg` fixtures log in to the `app` the test module defines (test_web.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sms.conftest import add_clinic, admin, admin_http, make_sms, reg, sms, sms_config  # noqa: F401  (fixtures)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import (
    Appointment,
    Employee,
    Patient,
    ReminderJob,
    ReminderRule,
    SmsMessage,
)

# 2026-05-28 09:00 UTC is 12:00 in Moscow; the visit is the next day at 10:00 Moscow time
T0 = datetime(2026, 5, 28, 9, 0, tzinfo=UTC)
VISIT = datetime(2026, 5, 29, 10, 0)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at_moscow(self, day: int, hour: int, minute: int = 0) -> None:
        self.now = datetime(2026, 5, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@dataclass
class Clinic:
    sessions: sessionmaker[Session]
    doctor: int
    surgeon: int
    cabinet: int
    service: int
    template: int

    def patient(self, phone: str = "+79161234567", **extra: object) -> int:
        with transaction(self.sessions) as s:
            p = Patient(last_name="Иванова", first_name="Мария", patronymic="Петровна", phone=phone, **extra)
            s.add(p)
            s.flush()
            return p.id

    def appointment(
        self,
        patient: int | None = None,
        *,
        at: datetime = VISIT,
        doctor: int | None = None,
        booked_at: datetime = T0 - timedelta(days=3),
        **extra: object,
    ) -> int:
        pid = patient or self.patient()
        with transaction(self.sessions) as s:
            a = Appointment(
                patient_id=pid,
                doctor_id=doctor or self.doctor,
                cabinet_id=self.cabinet,
                service_id=self.service,
                starts_at=at,
                created_at=booked_at,
                extra_info="",
                cancel_reason="",
                confirmation_status="",
                confirmation_source="",
                **extra,
            )
            s.add(a)
            s.flush()
            return a.id

    def rule(self, **values: object) -> int:
        defaults: dict[str, object] = {
            "name": "За сутки",
            "is_active": True,
            "channel": "sms",
            "moment": "before",
            "offset_value": 24,
            "offset_unit": "hours",
            "evening_time": "18:00",
            "stop_before_min": 60,
            "department": "",
            "template_id": self.template,
            "active_since": T0 - timedelta(days=7),
        }
        defaults.update(values)
        with transaction(self.sessions) as s:
            rule = ReminderRule(**defaults)
            s.add(rule)
            s.flush()
            return rule.id

    def jobs(self) -> list[ReminderJob]:
        with self.sessions() as s:
            return list(s.scalars(select(ReminderJob).order_by(ReminderJob.id)))

    def messages(self) -> list[SmsMessage]:
        with self.sessions() as s:
            return list(s.scalars(select(SmsMessage).order_by(SmsMessage.id)))

    def update(self, appointment_id: int, **values: object) -> None:
        with transaction(self.sessions) as s:
            row = s.get(Appointment, appointment_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)


@pytest.fixture()
def clinic(sessions: sessionmaker[Session]) -> Clinic:
    with transaction(sessions) as s:
        doctor, cabinet, service, tpl = add_clinic(s)
        surgeon = Employee(last_name="Хирургова", first_name="Нина", patronymic="", specialty="Хирург")
        s.add(surgeon)
        s.flush()
        return Clinic(sessions, doctor.id, surgeon.id, cabinet.id, service.id, tpl.id)


Tick = Callable[..., object]
