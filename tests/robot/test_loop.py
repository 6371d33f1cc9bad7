"""The whole loop against the emulator: export → the robot calls → Mango POSTs UpdateStatus
to our hooks listener → «Доп. информация»; the campaign-report fallback; task/delete."""

from __future__ import annotations

from datetime import time

from sqlalchemy.orm import Session, sessionmaker

from clinic.models import Appointment, ServerTask
from clinic.models.robot import ROBOT_DELETED, ROBOT_SENT
from clinic.robot.export import export_day, send_appointment
from clinic.robot.server_task import poll_results
from clinic.robot.systems import ClientOptions

from .conftest import Clinic
from .support import RunningEmulator, admin, emulator_tasks, robot_tasks


def test_robot_call_posts_update_status_and_extra_info_changes(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    yes = clinic.appointment(at=time(9, 0))
    no = clinic.appointment(at=time(9, 30))
    export_day(sessions, system_id, clinic.day, options=options)
    by_comment = {t["fields"]["comment"]: t["task_id"] for t in emulator_tasks(emu)}

    first = admin(emu, "call", {"task_id": by_comment[str(yes)], "digit": "1"})
    second = admin(emu, "call", {"task_id": by_comment[str(no)], "digit": "2"})

    assert first["webhook"]["http_status"] == 200, first["webhook"]
    assert second["webhook"]["http_status"] == 200
    assert clinic.get(yes).extra_info == "Запись подтверждена"
    assert clinic.get(no).extra_info == "Запись отменена"
    assert [t.result_status for t in robot_tasks(sessions)] == [1, 2]


def test_merged_task_callback_marks_every_appointment(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    patient = clinic.patient()
    ids = [clinic.appointment(patient, at=time(h, 0)) for h in (9, 12)]
    export_day(sessions, system_id, clinic.day, options=options)
    [task] = emulator_tasks(emu)

    admin(emu, "call", {"task_id": task["task_id"], "digit": "1"})

    assert [clinic.get(i).extra_info for i in ids] == ["Запись подтверждена"] * 2


def test_manual_send_then_callback(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    appointment = clinic.appointment()

    outcome = send_appointment(sessions, appointment, options=options)
    again = send_appointment(sessions, appointment, options=options)

    assert outcome.state == ROBOT_SENT
    assert again.state == "skipped" and "уже отправлена" in again.message
    [task] = emulator_tasks(emu)
    admin(emu, "call", {"task_id": task["task_id"], "digit": "1"})
    assert clinic.get(appointment).confirmation_status == "confirmed"


def test_manual_send_refuses_ineligible(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    cancelled = clinic.appointment(status="cancelled")
    landline = clinic.appointment(clinic.patient(phone="+74951234567"))
    no_consent = clinic.appointment(clinic.patient(consent=False))

    messages = [
        send_appointment(sessions, a, options=options).message for a in (cancelled, landline, no_consent)
    ]

    assert messages == [
        "Отправить нельзя: запись в статусе «Отменён»",
        "Отправить нельзя: телефон пациента не мобильный",
        "Отправить нельзя: пациент не дал согласия на звонки",
    ]
    assert emulator_tasks(emu) == []


def _enable_polling(sessions: sessionmaker[Session], system_id: int) -> None:
    with sessions() as session, session.begin():
        session.add(
            ServerTask(name="Отправка", external_system_id=system_id, is_enabled=False, poll_results=True)
        )


def test_pull_fallback_reads_the_campaign_report(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    _enable_polling(sessions, system_id)
    admin(emu, "config", {"webhook_url": None})  # the callback never comes
    confirm = clinic.appointment(at=time(9, 0))
    cancel = clinic.appointment(at=time(9, 30))
    unanswered = clinic.appointment(at=time(10, 0))
    export_day(sessions, system_id, clinic.day, options=options)
    by_comment = {t["fields"]["comment"]: t["task_id"] for t in emulator_tasks(emu)}
    admin(emu, "call", {"task_id": by_comment[str(confirm)], "digit": "1"})
    admin(emu, "call", {"task_id": by_comment[str(cancel)], "digit": "2"})
    admin(emu, "call", {"task_id": by_comment[str(unanswered)], "digit": None})

    counts = poll_results(sessions, options=options)
    repeat = poll_results(sessions, options=options)

    assert counts["applied"] == 2 and repeat["applied"] == 0
    assert clinic.get(confirm).extra_info == "Запись подтверждена"
    assert clinic.get(confirm).confirmation_source == "mango_report"
    assert clinic.get(cancel).extra_info == "Запись отменена"
    assert clinic.get(unanswered).extra_info == ""


def test_digit_mapping_is_configurable(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    from clinic.models import ExternalSystem

    _enable_polling(sessions, system_id)
    with sessions() as session, session.begin():
        system = session.get(ExternalSystem, system_id)
        assert system is not None
        system.digit_status = "3=1 4=2"
    admin(emu, "config", {"webhook_url": None, "digit_status": {"3": 1, "4": 2}})
    appointment = clinic.appointment()
    export_day(sessions, system_id, clinic.day, options=options)
    [task] = emulator_tasks(emu)
    admin(emu, "call", {"task_id": task["task_id"], "digit": "3"})

    poll_results(sessions, options=options)

    assert clinic.get(appointment).confirmation_status == "confirmed"


def test_appointment_cancelled_after_export_deletes_the_task(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    _enable_polling(sessions, system_id)
    appointment = clinic.appointment()
    export_day(sessions, system_id, clinic.day, options=options)
    with sessions() as session, session.begin():
        a = session.get(Appointment, appointment)
        assert a is not None
        a.status = "cancelled"

    counts = poll_results(sessions, options=options)

    assert counts["deleted"] == 1
    [row] = robot_tasks(sessions)
    assert row.state == ROBOT_DELETED
    [task] = emulator_tasks(emu)
    assert task["status"] == 6  # deleted at Mango's end
