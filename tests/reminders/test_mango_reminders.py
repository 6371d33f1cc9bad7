"""Reminder rules on the Mango robot channel, against the project's Mango emulator and our
real hooks listener (as the robot tests run them): appointments go into Mango tasks the way
the daily export sends them, one call per appointment whatever the sender, and a
confirmation elsewhere deletes the pending task at Mango."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from robot.support import CAMPAIGN, KEY, SALT, RunningEmulator, ServerThread, admin, emulator_tasks
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from clinic.clock import clinic_now, clinic_zone
from clinic.config import Config
from clinic.db import transaction
from clinic.mango import ManualClock
from clinic.models import Appointment, ClinicSettings, ExternalSystem, ReminderJob, RobotTask
from clinic.reminders.worker import tick
from clinic.robot.export import export_day
from clinic.robot.systems import ClientOptions
from clinic.services.schedule import confirm_appointment, update_appointment
from emulators.mango import EmulatorOptions, create_app, emulator_of
from webhooks.app import create_app as create_web_app

from .conftest import Clinic

pytestmark = pytest.mark.db
SECRET = "hook-secret-0123456789abcdef"
DELETED = 6  # Mango's task status «deleted» (API §4.6.13)


class RealClock:
    def __call__(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture()
def mango_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def emu(
    config: Config, sessions: sessionmaker[Session], mango_clock: ManualClock
) -> Iterator[RunningEmulator]:
    hooks = ServerThread(create_web_app(config, public_only=True, session_factory=sessions))
    values: dict[str, Any] = {
        "api_key": KEY,
        "api_salt": SALT,
        "clock": mango_clock,
        "webhook_url": f"{hooks.url}/MangoOffice/UpdateStatus?token={SECRET}",
    }
    app = create_app(EmulatorOptions.from_mapping(values))
    server = ServerThread(app)
    yield RunningEmulator(server.url, emulator_of(app), mango_clock)
    emulator_of(app).shutdown()
    server.stop()
    hooks.stop()


@pytest.fixture()
def system_id(sessions: sessionmaker[Session], emu: RunningEmulator) -> int:
    with transaction(sessions) as session:
        system = ExternalSystem(
            name="Mango Office", api_key=KEY, api_salt=SALT, campaign_id=CAMPAIGN, base_url=emu.api_base,
            field_names="", field_ids="", webhook_secret=SECRET, webhook_ips="", digit_status="1=1 2=2",
            rate_per_s=5, last_check_message="",
        )  # fmt: skip
        session.add(system)
        session.flush()
        return system.id


@pytest.fixture()
def tomorrow_at(sessions: sessionmaker[Session], clinic: Clinic) -> Any:
    """On the real clock (Mango's due dates are): quiet hours off, so any hour will do."""
    with transaction(sessions) as session:
        settings = session.scalars(select(ClinicSettings)).one()
        settings.sms_quiet_from = settings.sms_quiet_to = 0
        day = clinic_now(session).date() + timedelta(days=1)
    return lambda hour: datetime.combine(day, time(hour, 0))


def mango_options(emu: RunningEmulator) -> ClientOptions:
    return ClientOptions(clock=emu.clock, read_timeout=10.0)


def run(
    sessions: sessionmaker[Session],
    config: Config,
    emu: RunningEmulator,
    clock: Callable[[], datetime] | None = None,
) -> object:
    """One worker tick (on the real clock unless given one), the Mango client on the emulator's."""
    return tick(sessions, config, clock=clock or RealClock(), options={"mango": mango_options(emu)})


def tasks_by_phone(emu: RunningEmulator) -> dict[str, dict[str, Any]]:
    return {t["fields"]["number"]: t for t in emulator_tasks(emu)}


def test_confirmation_elsewhere_deletes_the_pending_mango_task(
    sessions: sessionmaker[Session],
    config: Config,
    clinic: Clinic,
    emu: RunningEmulator,
    system_id: int,
    tomorrow_at: Any,
) -> None:
    confirmed = clinic.appointment(clinic.patient("+79161234567"), at=tomorrow_at(10))
    answered = clinic.appointment(clinic.patient("+79031112233"), at=tomorrow_at(11))
    clinic.rule(channel="mango", template_id=None, offset_value=3, offset_unit="days")
    run(sessions, config, emu)
    tasks = tasks_by_phone(emu)
    assert set(tasks) == {"79161234567", "79031112233"}
    jobs = {j.appointment_id: j for j in clinic.jobs()}
    assert {j.state for j in jobs.values()} == {"sent"} and all(j.robot_task_id for j in jobs.values())

    with transaction(sessions) as s:  # the registrar confirms on the scheduler
        confirm_appointment(s, confirmed, source="registrar")
    admin(emu, "call", {"task_id": tasks["79031112233"]["task_id"], "digit": "1"})  # the other answers
    run(sessions, config, emu)

    tasks = tasks_by_phone(emu)
    assert tasks["79161234567"]["status"] == DELETED
    assert tasks["79031112233"]["status"] != DELETED
    jobs = {j.appointment_id: j for j in clinic.jobs()}
    assert (jobs[confirmed].state, jobs[confirmed].note) == (
        "stopped",
        "Задача Mango удалена: запись подтверждена до звонка",
    )
    assert jobs[answered].state == "sent"
    with sessions() as s:
        states = dict(s.execute(select(RobotTask.phone, RobotTask.state)).all())
    assert states == {"+79161234567": "deleted", "+79031112233": "sent"}


def test_one_call_per_appointment_whoever_sends_and_a_move_sends_anew(
    sessions: sessionmaker[Session],
    config: Config,
    clinic: Clinic,
    emu: RunningEmulator,
    system_id: int,
    tomorrow_at: Any,
) -> None:
    by_export = clinic.appointment(clinic.patient("+79161234567"), at=tomorrow_at(9))
    by_rule = clinic.appointment(clinic.patient("+79031112233"), at=tomorrow_at(12))
    export_day(sessions, system_id, tomorrow_at(9).date(), options=mango_options(emu))
    assert set(tasks_by_phone(emu)) == {"79161234567", "79031112233"}
    clinic.rule(channel="mango", template_id=None, offset_value=3, offset_unit="days")
    run(sessions, config, emu)
    assert len(emulator_tasks(emu)) == 2  # the rule added no second call
    assert {j.state for j in clinic.jobs()} == {"skipped"}

    # moved: the export's pending task is deleted, and the rule sends the new time
    with transaction(sessions) as s:
        update_appointment(s, by_rule, {"starts_at": tomorrow_at(15).isoformat()})
    run(sessions, config, emu)
    tasks = [t for t in emulator_tasks(emu) if t["fields"]["number"] == "79031112233"]
    assert sorted(t["status"] == DELETED for t in tasks) == [False, True]
    fresh = next(t for t in tasks if t["status"] != DELETED)
    assert "15:00" in str(fresh)
    assert by_export in {j.appointment_id for j in clinic.jobs()}


def test_the_robots_answer_stops_the_sms_reminder_still_to_come(
    sessions: sessionmaker[Session],
    sms_config: Config,
    sms: Any,
    clinic: Clinic,
    emu: RunningEmulator,
    system_id: int,
    tomorrow_at: Any,
) -> None:
    appointment = clinic.appointment(clinic.patient("+79161234567"), at=tomorrow_at(10))
    clinic.rule(name="Робот", channel="mango", template_id=None, offset_value=3, offset_unit="days")
    clinic.rule(name="СМС за 2 часа", offset_value=2, stop_before_min=30)
    run(sessions, sms_config, emu)
    [task] = emulator_tasks(emu)
    admin(emu, "call", {"task_id": task["task_id"], "digit": "1"})  # the patient confirms to the robot
    assert clinic.jobs()[0].state == "sent"

    with sessions() as s:
        visit_utc = tomorrow_at(10).replace(tzinfo=clinic_zone(s)).astimezone(UTC)
    run(sessions, sms_config, emu, clock=lambda: visit_utc - timedelta(hours=2))
    assert [j.rule.name for j in _jobs_with_rules(sessions)] == ["Робот"]  # the SMS one never planned
    assert sms.messages() == []
    with sessions() as s:
        assert s.get(Appointment, appointment).confirmation_source == "mango"  # type: ignore[union-attr]


def _jobs_with_rules(sessions: sessionmaker[Session]) -> list[ReminderJob]:
    with sessions() as s:
        return list(s.scalars(select(ReminderJob).options(joinedload(ReminderJob.rule))))
