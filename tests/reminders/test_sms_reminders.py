"""Reminder rules on the SMS channel, through the worker's run (`tick`) on a clock the tests
move, and the real sms.ru emulator: planning, quiet hours in the clinic's zone, the ttl, one
SMS per visit and rule whatever the re-runs, cancel and move, confirmation elsewhere."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smsru.support import Sms
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.reminders.worker import tick
from clinic.services.schedule import cancel_appointment, confirm_appointment, update_appointment

from .conftest import VISIT, Clinic, Clock

pytestmark = pytest.mark.db


def run(sessions: sessionmaker[Session], config: Config, clock: Clock) -> object:
    return tick(sessions, config, clock=clock)


def test_before_rule_sends_once_when_due(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    appointment = clinic.appointment()
    clinic.rule(offset_value=24)  # due 28.05 at 10:00 Moscow

    clock.at_moscow(28, 9, 59)
    run(sessions, sms_config, clock)
    assert clinic.jobs() == [] and sms.messages() == []

    clock.at_moscow(28, 10, 0)
    run(sessions, sms_config, clock)
    [job] = clinic.jobs()
    assert (job.state, job.appointment_id, job.starts_at) == ("sent", appointment, VISIT)
    [message] = sms.messages()
    assert message["phone"] == "79161234567"
    assert message["text"] == (
        "Мария Петровна, ждём вас 29.05.2026 в 10:00, врач Смирнов А.В., каб. 12 Терапия. Клиника Здоровье"
    )
    [row] = clinic.messages()
    assert (
        row.state == "sent"
        and row.idempotency_key == f"reminder:{appointment}:202605291000:rule:{job.rule_id}"
    )

    for _ in range(3):  # later runs, and the same run again on the same database
        clock.now += timedelta(minutes=5)
        run(sessions, sms_config, clock)
    assert len(sms.messages()) == 1 and len(clinic.jobs()) == 1


def test_quiet_hours_defer_in_the_clinic_zone_never_drop(
    sessions: sessionmaker[Session],
    sms_config: Config,
    sms: Sms,
    clinic: Clinic,
    clock: Clock,
    server_in_new_york: None,
) -> None:
    clinic.appointment()
    clinic.rule(offset_value=12, stop_before_min=30)  # due 28.05 22:00 Moscow: quiet hours

    clock.at_moscow(28, 22, 0)
    run(sessions, sms_config, clock)
    [job] = clinic.jobs()
    assert job.state == "planned" and sms.messages() == []
    assert job.note == "Тихие часы: отправка отложена до 29.05.2026 09:00"

    clock.at_moscow(29, 8, 59)
    run(sessions, sms_config, clock)
    assert clinic.jobs()[0].state == "planned" and sms.messages() == []

    clock.at_moscow(29, 9, 0)
    run(sessions, sms_config, clock)
    assert clinic.jobs()[0].state == "sent" and len(sms.messages()) == 1


def test_quiet_hours_ending_past_the_ttl_skip_with_the_reason(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    clinic.appointment()  # 10:00; the rule stops 60 min before it: 09:00, when quiet hours end
    clinic.rule(offset_value=12, stop_before_min=60)
    clock.at_moscow(28, 22, 0)
    run(sessions, sms_config, clock)
    [job] = clinic.jobs()
    assert job.state == "skipped" and "Тихие часы закончатся слишком поздно" in job.note
    assert sms.messages() == []


def test_ttl_nothing_after_the_visit_starts(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    late = clinic.appointment(at=datetime(2026, 5, 28, 12, 30))  # 30 min away: inside the 60 min margin
    booked_late = clinic.appointment(
        at=datetime(2026, 5, 28, 15, 0), booked_at=clock.now - timedelta(minutes=5)
    )
    clinic.rule(offset_value=24)
    clock.at_moscow(28, 12, 0)
    run(sessions, sms_config, clock)
    jobs = {j.appointment_id: j for j in clinic.jobs()}
    assert late not in jobs  # too late to remind at all
    assert jobs[booked_late].state == "sent"  # booked after its moment: reminded at once
    [row] = clinic.messages()
    assert row.expires_at is not None and row.appointment_id == booked_late

    # a planned reminder whose moment passed while the worker was away is not sent late
    other = clinic.appointment(clinic.patient("+79031112233"), at=datetime(2026, 5, 29, 16, 0))
    clock.at_moscow(29, 15, 30)  # the worker was down from its moment (28.05 16:00) until now
    run(sessions, sms_config, clock)
    assert other not in {j.appointment_id for j in clinic.jobs()}
    assert len(sms.messages()) == 1


def test_rule_switched_on_does_not_flood_past_moments(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    clinic.appointment()  # its 24-hour moment (28.05 10:00) passed before the rule existed
    clinic.rule(offset_value=24, active_since=clock.now)
    run(sessions, sms_config, clock)
    [job] = clinic.jobs()
    assert job.state == "skipped" and job.note == "Момент напоминания прошёл до включения правила"
    assert sms.messages() == []


def test_filters_doctor_department_service(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    therapist = clinic.appointment()
    surgery = clinic.appointment(clinic.patient("+79031112233"), doctor=clinic.surgeon)
    clinic.rule(name="Хирургия", department="Хирург")
    clinic.rule(name="Смирнов", doctor_id=clinic.doctor, service_id=clinic.service)
    run(sessions, sms_config, clock)
    by_rule = {(j.rule_id, j.appointment_id) for j in clinic.jobs()}
    rules = sorted({r for r, _ in by_rule})
    assert by_rule == {(rules[0], surgery), (rules[1], therapist)}
    assert sorted(m["phone"] for m in sms.messages()) == ["79031112233", "79161234567"]


def test_empty_template_field_is_never_sent(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    clinic.appointment()
    clinic.update(
        clinic.appointment(clinic.patient("+79031112233")),
        cabinet_id=None,
        starts_at=VISIT + timedelta(hours=1),
    )
    clinic.rule()
    run(sessions, sms_config, clock)
    states = sorted((j.state, j.note) for j in clinic.jobs())
    assert states[0][0] == "sent"
    assert states[1] == ("skipped", "Не заполнены поля шаблона: Кабинет; напоминание не отправлено")
    assert len(sms.messages()) == 1


def test_cancel_and_move_stop_pending_and_move_replans(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    cancelled = clinic.appointment()
    moved = clinic.appointment(clinic.patient("+79031112233"), at=VISIT + timedelta(hours=1))
    clinic.rule(offset_value=12, stop_before_min=30)  # due in quiet hours: both wait till 09:00
    clock.at_moscow(28, 23, 0)
    run(sessions, sms_config, clock)
    assert [j.state for j in clinic.jobs()] == ["planned", "planned"]

    with transaction(sessions) as s:
        cancel_appointment(s, cancelled, {"reason": "Пациент заболел"})
        update_appointment(s, moved, {"starts_at": "2026-05-29T16:00"}, allow_past=True)
    clock.at_moscow(29, 4, 0)  # 16:00 - 12 h: the moved visit's new moment, still in quiet hours
    run(sessions, sms_config, clock)
    jobs = clinic.jobs()
    notes = {(j.appointment_id, j.starts_at): (j.state, j.note) for j in jobs}
    assert notes[(cancelled, VISIT)] == ("stopped", "Запись отменена: напоминание не отправлено")
    assert notes[(moved, VISIT + timedelta(hours=1))] == (
        "stopped",
        "Запись перенесена на 29.05.2026 16:00: напоминание о прежнем времени не отправлено",
    )
    assert notes[(moved, datetime(2026, 5, 29, 16, 0))][0] == "planned"

    clock.at_moscow(29, 9, 0)
    run(sessions, sms_config, clock)
    [message] = sms.messages()
    assert message["phone"] == "79031112233" and "29.05.2026 в 16:00" in message["text"]


def test_confirmation_elsewhere_stops_pending_reminders(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    appointment = clinic.appointment()
    clinic.rule(name="Вечер", moment="evening", evening_time="20:00", stop_before_min=30)
    clinic.rule(name="Утро", offset_value=12, stop_before_min=30)
    clock.at_moscow(28, 20, 0)
    run(sessions, sms_config, clock)  # the evening one goes
    clock.at_moscow(28, 22, 0)
    run(sessions, sms_config, clock)  # the 12-hour one waits for the end of quiet hours
    assert sorted(j.state for j in clinic.jobs()) == ["planned", "sent"]

    with transaction(sessions) as s:  # «Подтвердить запись» on the scheduler
        confirm_appointment(s, appointment, source="registrar")
    clock.at_moscow(29, 9, 0)
    run(sessions, sms_config, clock)
    stopped = [j for j in clinic.jobs() if j.state == "stopped"]
    assert [j.note for j in stopped] == ["Запись подтверждена (регистратор): напоминание не нужно"]
    assert len(sms.messages()) == 1


def test_confirmed_while_queued_in_the_ledger_is_not_sent(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    """A reminder handed to the ledger but not yet sent (sms.ru refused for a while) is
    skipped once the visit is confirmed: checked again before each try."""
    appointment = clinic.appointment()
    clinic.rule()
    sms.faults({"kind": "api_error", "path": "sms/send", "code": 220, "count": 1})  # «сервис недоступен»
    run(sessions, sms_config, clock)
    [row] = clinic.messages()
    assert row.state == "queued"  # the ledger will try again after its back-off
    clinic.update(appointment, confirmation_status="confirmed", confirmation_source="mango")
    run(sessions, sms_config, clock)
    [row] = clinic.messages()
    assert row.state == "skipped" and "Запись подтверждена (робот Mango)" in row.note
    assert [j.state for j in clinic.jobs()] == ["stopped"]


def test_on_booking_reminds_at_once_and_again_after_a_move(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: Clinic, clock: Clock
) -> None:
    clinic.rule(name="При записи", moment="on_booking", active_since=clock.now - timedelta(hours=1))
    clinic.appointment(clinic.patient("+79031112233"), booked_at=clock.now - timedelta(hours=2))  # before it
    booked = clinic.appointment(booked_at=clock.now - timedelta(minutes=1))
    run(sessions, sms_config, clock)
    [message] = sms.messages()
    assert message["phone"] == "79161234567" and "29.05.2026 в 10:00" in message["text"]

    with transaction(sessions) as s:
        update_appointment(s, booked, {"starts_at": "2026-05-30T11:00"}, allow_past=True)
    clock.now += timedelta(minutes=1)
    run(sessions, sms_config, clock)
    texts = [m["text"] for m in sms.messages()]
    assert len(texts) == 2 and "30.05.2026 в 11:00" in texts[1]
    run(sessions, sms_config, clock)
    assert len(sms.messages()) == 2
