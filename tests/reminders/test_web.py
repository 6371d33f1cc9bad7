"""«СМС → Правила напоминаний» over HTTP: admin only (checked on the server), every field
checked with a Russian message and nothing half-written, a template with an unknown field
refused at save time; the patient card's history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sms.conftest import staff_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web.support import Web

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ReminderJob, ReminderRule, SmsTemplate
from clinic.reminders import channels

from .conftest import T0, Clinic

pytestmark = pytest.mark.db


@pytest.fixture()
def app(sessions: sessionmaker[Session], config: Config, clinic: Clinic) -> Flask:
    return staff_app(sessions, config)


def form(clinic: Clinic, **values: str) -> dict[str, str]:
    data = {
        "name": "За сутки",
        "is_active": "on",
        "channel": "sms",
        "moment": "before",
        "offset_value": "24",
        "offset_unit": "hours",
        "evening_time": "18:00",
        "stop_before_min": "60",
        "doctor_id": "",
        "service_id": "",
        "department": "",
        "template_id": str(clinic.template),
    }
    data.update(values)
    return data


def rules_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(ReminderRule)) or 0


def test_registrar_cannot_open_or_post(reg: Web, clinic: Clinic, sessions: sessionmaker[Session]) -> None:
    assert reg.get("/sms/reminders").status_code == 403
    assert reg.get("/sms/reminders/new").status_code == 403
    csrf = reg.csrf("/patients")
    reply = reg.client.post("/sms/reminders/new", data={**form(clinic), "csrf_token": csrf})
    assert reply.status_code == 403 and rules_count(sessions) == 0
    assert "Правила напоминаний" not in reg.get("/patients").text


def test_admin_creates_edits_and_sees_the_rule(
    admin: Web, clinic: Clinic, sessions: sessionmaker[Session]
) -> None:
    assert "Правила напоминаний" in admin.get("/patients").text  # the menu entry
    reply = admin.post_form("/sms/reminders/new", form(clinic, department="Хирург"))
    assert reply.status_code == 302
    with sessions() as s:
        rule = s.scalars(select(ReminderRule)).one()
        assert (rule.channel, rule.offset_value, rule.department, rule.template_id) == (
            "sms", 24, "Хирург", clinic.template,
        )  # fmt: skip
    page = admin.get("/sms/reminders").text
    assert "За 24 часа до приёма" in page and "подразделение «Хирург»" in page
    reply = admin.post_form(f"/sms/reminders/{rule.id}", form(clinic, moment="evening", evening_time="19:30"))
    assert reply.status_code == 302
    with sessions() as s:
        assert s.get(ReminderRule, rule.id).moment_title == "Накануне в 19:30"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"name": ""}, "name", "Укажите наименование правила"),
        ({"channel": "fax"}, "channel", "Такой канал не подключён"),
        ({"moment": "sometimes"}, "moment", "Выберите, когда отправлять напоминание"),
        ({"offset_value": "сутки"}, "offset_value", "Укажите целое число"),
        ({"offset_value": "0"}, "offset_value", "Число от 1 до 336"),
        ({"offset_value": "15", "offset_unit": "days"}, "offset_value", "Число от 1 до 14"),
        ({"offset_unit": "weeks"}, "offset_unit", "Выберите: часов или дней"),
        (
            {"moment": "evening", "evening_time": "25:00"},
            "evening_time",
            "Время в формате ЧЧ:ММ, например 18:00",
        ),
        (
            {"moment": "evening", "evening_time": "22:30"},
            "evening_time",
            "Время попадает в тихие часы (21:00–09:00)",
        ),
        ({"stop_before_min": "-5"}, "stop_before_min", "Число минут от 0 до 1440"),
        ({"doctor_id": "99999"}, "doctor_id", "Врач не найден(а): выберите из списка"),
        ({"doctor_id": "1x"}, "doctor_id", "Врач не найден(а): выберите из списка"),
        ({"department": "Окулист"}, "department", "Подразделение не найдено: выберите из списка"),
        ({"template_id": ""}, "template_id", "Выберите шаблон СМС"),
    ],
)
def test_bad_input_is_refused_with_a_russian_message(
    admin: Web,
    clinic: Clinic,
    sessions: sessionmaker[Session],
    values: dict[str, str],
    field: str,
    message: str,
) -> None:
    reply = admin.post_form("/sms/reminders/new", form(clinic, **values))
    assert reply.status_code == 422
    assert f'data-error-for="{field}">{message}' in reply.text
    assert "Правило не сохранено" in reply.text
    assert rules_count(sessions) == 0


def test_a_template_with_an_unknown_field_is_refused_at_save_time(
    admin: Web, clinic: Clinic, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:  # stored before the check existed, or by hand
        bad = SmsTemplate(name="Старый", recipient_type="patient", is_default=False, body="Ждём {doctor_fio}")
        s.add(bad)
        s.flush()
        bad_id = bad.id
    reply = admin.post_form("/sms/reminders/new", form(clinic, template_id=str(bad_id)))
    assert reply.status_code == 422
    assert "Шаблон «Старый»: Неизвестное поле подстановки {doctor_fio}" in reply.text
    assert rules_count(sessions) == 0


def test_a_channel_without_a_dispatcher_is_not_offered(admin: Web, clinic: Clinic) -> None:
    page = admin.get("/sms/reminders/new").text
    assert 'value="sms"' in page and 'value="mango"' in page
    assert 'value="voice"' in page  # our own robot on Asterisk
    saved = channels.get("mango")
    assert saved is not None
    channels.unregister("mango")
    try:
        page = admin.get("/sms/reminders/new").text
        assert 'value="mango"' not in page
        reply = admin.post_form("/sms/reminders/new", form(clinic, channel="mango", template_id=""))
        assert reply.status_code == 422 and "Такой канал не подключён" in reply.text
    finally:
        channels.register(saved)


def test_a_rule_that_sent_can_be_switched_off_not_deleted(
    admin: Web, clinic: Clinic, sessions: sessionmaker[Session]
) -> None:
    rule_id = clinic.rule()
    appointment = clinic.appointment()
    with transaction(sessions) as s:
        other = clinic.patient("+79990001122")
        s.add(ReminderJob(rule_id=rule_id, appointment_id=appointment, patient_id=other,
                          starts_at=T0.replace(tzinfo=None), channel="sms", state="sent", due_at=T0,
                          expires_at=T0 + timedelta(days=1), note=""))  # fmt: skip
    reply = admin.post_form(f"/sms/reminders/{rule_id}/delete", {}, page=f"/sms/reminders/{rule_id}")
    assert reply.status_code == 302
    assert "можно выключить, но не удалить" in admin.get(f"/sms/reminders/{rule_id}").text
    assert rules_count(sessions) == 1
    unused = clinic.rule(name="Лишнее")
    assert (
        admin.post_form(f"/sms/reminders/{unused}/delete", {}, page=f"/sms/reminders/{unused}").status_code
        == 302
    )
    assert rules_count(sessions) == 1


def test_card_history_filters_and_odd_parameters(
    reg: Web, clinic: Clinic, sessions: sessionmaker[Session]
) -> None:
    patient = clinic.patient()
    appointment = clinic.appointment(patient)
    clinic.update(appointment, confirmation_status="confirmed", confirmation_source="mango", confirmed_at=T0)
    page = reg.get(f"/patients/{patient}")
    assert page.status_code == 200
    assert "История пациента" in page.text
    assert page.text.count('data-testid="timeline-item"') == 2
    assert "Источник: робот Mango" in page.text
    only = reg.get(f"/patients/{patient}?kind=status")
    assert only.text.count('data-testid="timeline-item"') == 1 and 'data-kind="status"' in only.text
    for odd in ("?before=garbage", "?before=1.sms.999999999999", "?kind=%00&kind=x", "?before=" + "9" * 300):
        assert reg.get(f"/patients/{patient}{odd}").status_code == 200, odd


@pytest.mark.parametrize(
    ("value", "unit", "title"),
    [
        (1, "hours", "За 1 час до приёма"),
        (3, "hours", "За 3 часа до приёма"),
        (12, "hours", "За 12 часов до приёма"),
        (21, "hours", "За 21 час до приёма"),
        (2, "days", "За 2 дня до приёма"),
        (11, "days", "За 11 дней до приёма"),
    ],
)
def test_moment_title_in_russian(value: int, unit: str, title: str) -> None:
    assert ReminderRule(moment="before", offset_value=value, offset_unit=unit).moment_title == title


def test_card_history_plays_a_call_recording(
    reg: Web, clinic: Clinic, sessions: sessionmaker[Session]
) -> None:
    from clinic.models import Call, CallRecording

    patient = clinic.patient()
    with transaction(sessions) as s:
        call = Call(uid="c-rec", direction="outbound", patient_id=patient, number="+79161234567",
                    state="ended", result="answered", started_at=T0, answered_at=T0,
                    ended_at=T0 + timedelta(seconds=42))  # fmt: skip
        s.add(call)
        s.flush()
        done = CallRecording(call_id=call.id, patient_id=patient, name="call-c-rec-1", state="done")
        failed = CallRecording(call_id=call.id, patient_id=patient, name="call-c-rec-2", state="failed")
        s.add_all([done, failed])
        s.flush()
        done_id, failed_id = done.id, failed.id
    page = reg.get(f"/patients/{patient}?kind=call").text
    assert page.count('data-testid="timeline-recording"') == 1
    assert f'src="/calls/recordings/{done_id}"' in page and f"/calls/recordings/{failed_id}" not in page
    assert "Исходящий звонок" in page and "0:42" in page


def test_a_deleted_template_leaves_the_rule_saying_so(
    admin: Web, clinic: Clinic, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        spare = SmsTemplate(
            name="Запасной", recipient_type="patient", is_default=False, body="Ждём вас {date}"
        )
        s.add(spare)
        s.flush()
        spare_id = spare.id
    rule_id = clinic.rule(template_id=spare_id)
    reply = admin.post_form(f"/sms/templates/{spare_id}/delete", {}, page=f"/sms/templates/{spare_id}")
    assert reply.status_code == 302
    with sessions() as s:
        assert s.get(ReminderRule, rule_id).template_id is None  # type: ignore[union-attr]
    assert "шаблон удалён" in admin.get("/sms/reminders").text
    reply = admin.post_form(f"/sms/reminders/{rule_id}", form(clinic, template_id=""))
    assert reply.status_code == 422 and "Выберите шаблон СМС" in reply.text
