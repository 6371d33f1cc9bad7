"""clinic.services.schedule used directly, the way the registrar's pages use it: form text in,
ValidationError with Russian messages per field out, nothing written on failure."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, Patient
from clinic.services import ValidationError, schedule
from clinic.services.schedule import ConflictError, NotFoundError

pytestmark = pytest.mark.db


def test_form_text_is_converted(sessions: sessionmaker[Session]) -> None:
    form = {
        "last_name": "Иванов",
        "first_name": "Иван",
        "patronymic": "",
        "birth_date": "",
        "phone": "8 916 123 45 67",
        "phone_extra": "",
        "consent_sms": "on",
        "consent_calls": "",
        "csrf_token": "ignored",
    }
    with transaction(sessions) as s:
        p = schedule.create_patient(s, form, forms=True)
        assert (p.birth_date, p.phone, p.phone_extra) == (None, "+79161234567", None)
        assert (p.consent_sms, p.consent_calls) == (True, False)
        doc = schedule.create_employee(
            s, {"last_name": "Орлова", "first_name": "Н", "is_active": "on"}, forms=True
        )
        start = datetime.combine(date.today() + timedelta(days=3), datetime.min.time()).replace(hour=9)
        appt = schedule.create_appointment(
            s,
            {
                "patient_id": str(p.id),
                "doctor_id": str(doc.id),
                "starts_at": start.isoformat(timespec="minutes"),
                "duration_min": "30",
                "cabinet_id": "",
                "service_id": "",
            },
            forms=True,
        )
        assert (appt.duration_min, appt.cabinet_id, appt.starts_at) == (30, None, start)


def test_errors_name_each_field_in_russian(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, pytest.raises(ValidationError) as caught:
        schedule.create_patient(s, {"last_name": "", "phone": "12", "birth_date": "31.12.1990"}, forms=True)
    errors = caught.value.errors
    assert set(errors) == {"last_name", "first_name", "phone", "birth_date"}
    assert errors["last_name"] == "Обязательное поле"
    assert all(any("а" <= ch.lower() <= "я" for ch in msg) for msg in errors.values())


def test_json_mode_is_strict_about_types(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, pytest.raises(ValidationError) as caught:
        schedule.create_patient(s, {"last_name": "А", "first_name": "Б", "consent_sms": "on"})
    assert set(caught.value.errors) == {"consent_sms"}


def test_conflicts_and_missing_records_have_their_own_types(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        schedule.create_cabinet(s, {"number": "1"})
    with sessions() as s:
        with pytest.raises(ConflictError):
            schedule.create_cabinet(s, {"number": "1"})
        with pytest.raises(NotFoundError):
            schedule.get_patient(s, 12345)
        with pytest.raises(NotFoundError):
            schedule.update_appointment(s, 12345, {})


def test_a_failed_call_inside_a_transaction_writes_nothing(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        doc = schedule.create_employee(s, {"last_name": "Орлова", "first_name": "Н"})
        doc_id = doc.id
    start = (datetime.now() + timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0)
    with pytest.raises(ValidationError), transaction(sessions) as s:
        # The patient is created first, then the booking fails: the unit of work rolls both back.
        p = schedule.create_patient(s, {"last_name": "А", "first_name": "Б"})
        schedule.create_appointment(
            s, {"patient_id": p.id, "doctor_id": doc_id, "starts_at": start.isoformat(), "status": "lost"}
        )
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 0
        assert s.scalar(select(func.count()).select_from(Appointment)) == 0
