"""«Рассылка СМС» documents at the service level: selection, validation, states."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, Employee, Patient, SmsTemplate, User
from clinic.models.schedule import STATUS_CANCELLED
from clinic.services import ValidationError
from clinic.sms import mailings

from .conftest import START, TOMORROW_10

DAY = TOMORROW_10.date().isoformat()


def _user(s: Session) -> User:
    user = User(login="admin", password_hash="x", role="admin")
    s.add(user)
    s.flush()
    return user


def test_fill_honours_the_filters_and_skips_cancelled(
    sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    with transaction(sessions) as s:
        other = Employee(last_name="Другой", first_name="Врач")
        p = Patient(last_name="Сидоров", first_name="Иван", phone="+79035550000")
        s.add_all([other, p])
        s.flush()
        s.add(
            Appointment(
                patient_id=p.id, doctor_id=other.id, starts_at=datetime.combine(TOMORROW_10.date(), time(12))
            )
        )
        one_pm = datetime.combine(TOMORROW_10.date(), time(13))
        s.add(
            Appointment(
                patient_id=p.id, doctor_id=clinic["doctor"], starts_at=one_pm, status=STATUS_CANCELLED
            )
        )
        user = _user(s)
        header = {"period_from": DAY, "period_to": DAY, "template_id": clinic["template"]}
        everyone = mailings.save_header(s, None, header, user, date(2026, 5, 28))
        assert mailings.fill_from_appointments(s, everyone) == 2  # the cancelled one is left out
        assert mailings.fill_from_appointments(s, everyone) == 0  # filling again adds nothing
        by_doctor = mailings.save_header(
            s, None, {**header, "doctor_id": clinic["doctor"]}, user, date(2026, 5, 28)
        )
        assert mailings.fill_from_appointments(s, by_doctor) == 1
        assert by_doctor.number == everyone.number + 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"period_from": "2026-05-30", "period_to": "2026-05-29"}, "period_to"),
        ({"period_from": "2026-01-01", "period_to": "2026-05-29"}, "period_to"),
        ({"period_from": "вчера"}, "period_from"),
        ({"template_id": "999"}, "template_id"),
        ({"doctor_id": "abc"}, "doctor_id"),
    ],
)
def test_header_validation(sessions: sessionmaker[Session], data: dict[str, str], field: str) -> None:
    with sessions() as s, pytest.raises(ValidationError) as info:
        mailings.save_header(s, None, data, _user(s), date(2026, 5, 28))
    assert field in info.value.errors


def test_states_draft_sending_sent_signed(sessions: sessionmaker[Session], clinic: dict[str, int]) -> None:
    with transaction(sessions) as s:
        user = _user(s)
        # a text with no appointment fields: a row added by number alone fills it completely
        news = SmsTemplate(name="Новости", recipient_type="patient", body="{clinic}: новый кабинет УЗИ")
        s.add(news)
        s.flush()
        m = mailings.save_header(
            s,
            None,
            {"period_from": DAY, "period_to": DAY, "template_id": news.id},
            user,
            date(2026, 5, 28),
        )
        with pytest.raises(ValidationError):
            mailings.start_sending(s, m, user, now=START)  # no recipients yet
        row = mailings.add_row(s, m, {"phone": "8 903 555-00-01"})
        with pytest.raises(ValidationError):
            mailings.add_row(s, m, {"phone": "12"})
        with pytest.raises(ValidationError):
            mailings.sign(s, m, now=START)  # only a sent document can be signed
        assert mailings.start_sending(s, m, user, now=START).queued == 1
        assert m.state == "sending" and row.message_id is not None
        with pytest.raises(ValidationError):
            mailings.update_rows(s, m, {row.id: "+79035550002"}, set())  # no edits after sending
        with pytest.raises(ValidationError):
            mailings.delete_draft(s, m)
