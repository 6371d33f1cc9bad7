"""The export: which appointments go, what Mango receives, one task per phone, never twice."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy.orm import Session, sessionmaker

from clinic.models import Patient
from clinic.models.robot import ROBOT_FAILED, ROBOT_SENT
from clinic.robot.export import export_day, send_appointment
from clinic.robot.systems import ClientOptions

from .conftest import Clinic
from .support import CAMPAIGN, RunningEmulator, emulator_tasks, robot_tasks


def test_selects_next_day_booked_mobile_consented_unsent(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    good = clinic.appointment(at=time(9, 0))
    clinic.appointment(at=time(9, 20), status="cancelled")
    clinic.appointment(clinic.patient(phone=""), at=time(9, 40))
    clinic.appointment(clinic.patient(phone="+74951234567"), at=time(10, 0))  # landline
    clinic.appointment(clinic.patient(consent=False), at=time(10, 20))
    clinic.appointment(at=time(10, 40), day=clinic.day + timedelta(days=1))  # the day after

    report = export_day(sessions, system_id, clinic.day, options=options)

    assert report.found == 1
    assert report.sent == 1
    [sent] = emulator_tasks(emu)
    assert sent["campaign_id"] == CAMPAIGN
    assert sent["fields"]["comment"] == str(good)
    [row] = robot_tasks(sessions)
    assert [i.appointment_id for i in row.items] == [good]
    assert row.state == ROBOT_SENT and row.task_id == sent["task_id"]


def test_task_carries_custom_fields_by_id(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    clinic.appointment(clinic.patient(phone="+79161112233", last_name="Смирнов"), at=time(10, 30))

    export_day(sessions, system_id, clinic.day, options=options)

    [sent] = emulator_tasks(emu)
    fields = sent["fields"]
    assert fields["number"] == "79161112233"
    assert fields["name"] == "Смирнов Пётр Сергеевич"
    assert fields["custom_fields"] == {
        "5901": "10:30",
        "5902": f"{clinic.day:%d.%m.%Y}",
        "5903": "Приём терапевта",
        "5904": "Терапевтов О.И.",
        "5905": "Смирнов Пётр Сергеевич",
    }


def test_two_appointments_of_one_phone_become_one_task_naming_both(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    patient = clinic.patient(phone="+79160000001")
    first = clinic.appointment(patient, at=time(9, 0))
    second = clinic.appointment(patient, at=time(11, 0))

    report = export_day(sessions, system_id, clinic.day, options=options)

    assert report.found == 2 and report.sent == 2
    [sent] = emulator_tasks(emu)
    assert sent["fields"]["custom_fields"]["5901"] == "09:00, 11:00"
    assert sent["fields"]["custom_fields"]["5903"] == "Приём терапевта; Приём терапевта"
    [row] = robot_tasks(sessions)
    assert sorted(i.appointment_id for i in row.items) == [first, second]
    assert row.ref == str(first)


def test_a_second_run_sends_nothing(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    for hour in (9, 10, 11):
        clinic.appointment(at=time(hour, 0))

    first = export_day(sessions, system_id, clinic.day, options=options)
    second = export_day(sessions, system_id, clinic.day, options=options)

    assert (first.sent, second.found, second.sent) == (3, 0, 0)
    assert len(emulator_tasks(emu)) == 3


def test_5109_for_a_number_already_called_joins_our_existing_task(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    patient = clinic.patient(phone="+79160000002")
    manual = clinic.appointment(patient, at=time(9, 0))
    assert send_appointment(sessions, manual, options=options).state == ROBOT_SENT
    later = clinic.appointment(patient, at=time(15, 0))  # booked after the manual send

    report = export_day(sessions, system_id, clinic.day, options=options)

    assert report.sent == 1
    assert len(emulator_tasks(emu)) == 1
    [row] = robot_tasks(sessions)
    assert sorted(i.appointment_id for i in row.items) == [manual, later]


def test_a_foreign_5109_is_a_failure_not_a_send(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    from clinic.mango import Task

    appointment = clinic.appointment(clinic.patient(phone="+79160000003"))
    from clinic.robot.systems import make_client

    with sessions() as session:
        from clinic.models import ExternalSystem

        system = session.get(ExternalSystem, system_id)
        assert system is not None
        with make_client(system, None, options) as client:
            client.add_task(CAMPAIGN, Task(number="79160000003", name="чужая задача"))

    report = export_day(sessions, system_id, clinic.day, options=options)

    assert report.failed == 1 and report.sent == 0
    [row] = robot_tasks(sessions)
    assert row.state == ROBOT_FAILED and "5109" in row.error
    assert [i.appointment_id for i in row.items] == [appointment]


def test_every_request_is_in_the_exchange_log_with_the_salt_and_key_masked(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    from sqlalchemy import select

    from clinic.models import ExchangeLogEntry

    from .support import KEY, SALT

    clinic.appointment()
    export_day(sessions, system_id, clinic.day, options=options)

    with sessions() as session:
        rows = session.scalars(select(ExchangeLogEntry).order_by(ExchangeLogEntry.id)).all()
    assert [r.owner for r in rows] == ["Mango Office custom-type/list", "Mango Office task/add"]
    assert all(r.direction == "out" and r.http_status == 200 for r in rows)
    text = " ".join(r.payload + r.response for r in rows)
    assert SALT not in text and KEY not in text
    assert '"task_id"' in rows[1].response


def test_phone_with_consent_withdrawn_after_booking_is_skipped(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    patient = clinic.patient()
    clinic.appointment(patient)
    with sessions() as session, session.begin():
        p = session.get(Patient, patient)
        assert p is not None
        p.consent_calls = False

    report = export_day(sessions, system_id, clinic.day, options=options)

    assert report.found == 0 and emulator_tasks(emu) == []
