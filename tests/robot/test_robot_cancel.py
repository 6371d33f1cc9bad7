"""A patient's «Запись отменена» through the robot cancels the appointment the way staff do
(«Отменён», a reason, the slot free again), by the UpdateStatus callback and by the campaign
report alike; the stale and repeat rules of clinic/robot/status.py still hold, and a
confirmation after the robot's own cancellation leaves the appointment cancelled but tells
staff to call the patient back. Everything runs through the Mango emulator and our real
hooks listener."""

from __future__ import annotations

from datetime import time

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, ServerTask
from clinic.robot.export import export_day
from clinic.robot.server_task import poll_results
from clinic.robot.status import CONFIRMED_AFTER_CANCEL, ROBOT_CANCEL_REASON
from clinic.robot.systems import ClientOptions
from clinic.services.schedule import create_appointment

from .conftest import SECRET, Clinic
from .support import RunningEmulator, admin, emulator_tasks, journal_lines


@pytest.fixture()
def exported(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> tuple[int, int]:
    """(appointment id, Mango task id) of one appointment sent to the robot."""
    appointment = clinic.appointment(at=time(10, 0))
    export_day(sessions, system_id, clinic.day, options=options)
    [task] = emulator_tasks(emu)
    return appointment, task["task_id"]


def press(emu: RunningEmulator, task_id: int, digit: str) -> dict[str, object]:
    """The robot calls and the patient presses `digit`; the emulator's UpdateStatus reaches
    our hooks listener."""
    hook = admin(emu, "call", {"task_id": task_id, "digit": digit})["webhook"]
    assert hook["http_status"] == 200, hook
    return hook


def update_status(hooks_url: str, appointment_id: int, status: int) -> dict[str, object]:
    """A later UpdateStatus about the same task (Mango re-sends; the patient called back),
    posted to our hooks listener the way Mango posts it. The task's id is the appointment's."""
    reply = requests.post(
        f"{hooks_url}/MangoOffice/UpdateStatus?token={SECRET}",
        json={"id": str(appointment_id), "status": status},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _set(sessions: sessionmaker[Session], appointment_id: int, **fields: object) -> None:
    with transaction(sessions) as session:
        row = session.get(Appointment, appointment_id)
        assert row is not None
        for key, value in fields.items():
            setattr(row, key, value)


def test_cancellation_by_the_robot_cancels_the_appointment(
    sessions: sessionmaker[Session], clinic: Clinic, emu: RunningEmulator, exported: tuple[int, int]
) -> None:
    appointment, task = exported

    press(emu, task, "2")

    a = clinic.get(appointment)
    assert (a.status, a.status_title) == ("cancelled", "Отменён")
    assert a.cancel_reason == ROBOT_CANCEL_REASON == "Отменено пациентом (робот Mango)"
    assert a.extra_info == "Запись отменена"
    assert (a.confirmation_status, a.confirmation_source) == ("cancelled", "mango")
    # the slot is free again, as after a cancellation by staff
    patient = clinic.patient()
    with transaction(sessions) as session:
        booking = {"patient_id": patient, "doctor_id": clinic.doctor_id, "starts_at": a.starts_at.isoformat()}
        assert create_appointment(session, booking).status == "booked"


def test_a_repeated_cancellation_changes_nothing(
    clinic: Clinic, emu: RunningEmulator, hooks_url: str, exported: tuple[int, int]
) -> None:
    appointment, task = exported
    press(emu, task, "2")
    before = clinic.get(appointment)

    assert update_status(hooks_url, appointment, 2)["result"] == "repeated"

    after = clinic.get(appointment)
    assert (after.status, after.extra_info, after.confirmed_at, after.updated_at) == (
        before.status, before.extra_info, before.confirmed_at, before.updated_at,
    )  # fmt: skip


def test_a_confirmation_after_the_robots_cancellation_keeps_it_cancelled_and_tells_staff(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    emu: RunningEmulator,
    hooks_url: str,
    exported: tuple[int, int],
) -> None:
    appointment, task = exported
    press(emu, task, "2")

    assert update_status(hooks_url, appointment, 1)["result"] == "stale"
    assert update_status(hooks_url, appointment, 1)["result"] == "stale"  # adds nothing again

    a = clinic.get(appointment)
    assert a.status == "cancelled" and a.cancel_reason == ROBOT_CANCEL_REASON
    assert a.confirmation_status == "cancelled"
    assert a.extra_info == f"Запись отменена\n{CONFIRMED_AFTER_CANCEL}"
    warnings = [line for line in journal_lines(sessions) if "после отмены через робота" in line]
    assert len(warnings) == 1
    assert f"Запись №{appointment}" in warnings[0] and "перезвоните пациенту" in warnings[0]


def test_a_cancellation_after_the_robots_confirmation_cancels(
    clinic: Clinic, emu: RunningEmulator, hooks_url: str, exported: tuple[int, int]
) -> None:
    appointment, task = exported
    press(emu, task, "1")

    assert update_status(hooks_url, appointment, 2)["result"] == "applied"

    a = clinic.get(appointment)
    assert (a.status, a.extra_info, a.cancel_reason) == ("cancelled", "Запись отменена", ROBOT_CANCEL_REASON)


@pytest.mark.parametrize("status", ["arrived", "done", "no_show"])
def test_an_answer_about_an_appointment_staff_moved_on_is_stale(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    emu: RunningEmulator,
    exported: tuple[int, int],
    status: str,
) -> None:
    appointment, task = exported
    _set(sessions, appointment, status=status)

    press(emu, task, "2")

    a = clinic.get(appointment)
    assert (a.status, a.cancel_reason, a.extra_info, a.confirmation_status) == (status, "", "", "")


def test_a_cancellation_older_than_a_staff_confirmation_is_stale(
    sessions: sessionmaker[Session], clinic: Clinic, emu: RunningEmulator, exported: tuple[int, int]
) -> None:
    from clinic.models import utcnow

    appointment, task = exported
    _set(sessions, appointment, confirmation_status="confirmed", confirmation_source="registrar",
         confirmed_at=utcnow(), extra_info="Запись подтверждена")  # fmt: skip

    press(emu, task, "2")

    a = clinic.get(appointment)
    assert (a.status, a.confirmation_source, a.extra_info) == ("booked", "registrar", "Запись подтверждена")


def test_the_campaign_report_cancels_as_the_callback_does(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    with transaction(sessions) as session:
        session.add(
            ServerTask(name="Отправка", external_system_id=system_id, is_enabled=False, poll_results=True)
        )
    admin(emu, "config", {"webhook_url": None})  # the callback never comes
    appointment = clinic.appointment(at=time(9, 30))
    export_day(sessions, system_id, clinic.day, options=options)
    [task] = emulator_tasks(emu)
    admin(emu, "call", {"task_id": task["task_id"], "digit": "2"})

    assert poll_results(sessions, options=options)["applied"] == 1

    a = clinic.get(appointment)
    assert (a.status, a.cancel_reason, a.extra_info) == ("cancelled", ROBOT_CANCEL_REASON, "Запись отменена")
    assert a.confirmation_source == "mango_report"
