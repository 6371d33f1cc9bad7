"""Fixtures for the robot tests: the Mango emulator (in-process, sharing a ManualClock with
our client, so rate limits never wait), our hooks listener on a real port for the
emulator's UpdateStatus callbacks, a configured Mango entry, and appointment builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import clinic_now
from clinic.config import Config
from clinic.db import transaction
from clinic.mango import ManualClock
from clinic.models import Appointment, Employee, ExternalSystem, Patient, ServerTask, Service
from clinic.robot.systems import ClientOptions
from emulators.mango import EmulatorOptions, create_app, emulator_of
from webhooks.app import create_app as create_web_app

from .support import CAMPAIGN, KEY, SALT, RunningEmulator, ServerThread

SECRET = "hook-secret-0123456789abcdef"


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def hooks_url(config: Config, sessions: sessionmaker[Session]) -> Iterator[str]:
    """Our :55055 listener (public blueprint only) on a free port."""
    srv = ServerThread(create_web_app(config, public_only=True, session_factory=sessions))
    yield srv.url
    srv.stop()


@pytest.fixture()
def start_emulator(clock: ManualClock) -> Iterator[Callable[..., RunningEmulator]]:
    started: list[tuple[ServerThread, Any]] = []

    def start(**overrides: Any) -> RunningEmulator:
        values: dict[str, Any] = {"api_key": KEY, "api_salt": SALT, "clock": clock}
        values.update(overrides)
        app = create_app(EmulatorOptions.from_mapping(values))
        srv = ServerThread(app)
        emu = emulator_of(app)
        started.append((srv, emu))
        return RunningEmulator(srv.url, emu, values["clock"])

    yield start
    for srv, emu in started:
        emu.shutdown()
        srv.stop()


@pytest.fixture()
def emu(start_emulator: Callable[..., RunningEmulator], hooks_url: str) -> RunningEmulator:
    return start_emulator(webhook_url=f"{hooks_url}/MangoOffice/UpdateStatus?token={SECRET}")


@pytest.fixture()
def options(clock: ManualClock) -> ClientOptions:
    return ClientOptions(clock=clock, read_timeout=10.0)


@pytest.fixture()
def system_id(sessions: sessionmaker[Session], emu: RunningEmulator) -> int:
    with transaction(sessions) as session:
        system = ExternalSystem(
            name="Mango Office",
            api_key=KEY,
            api_salt=SALT,
            campaign_id=CAMPAIGN,
            base_url=emu.api_base,
            field_names="",
            field_ids="",
            webhook_secret=SECRET,
            webhook_ips="",
            digit_status="1=1 2=2",
            rate_per_s=5,
            last_check_message="",
        )
        session.add(system)
        session.flush()
        return system.id


@pytest.fixture()
def task_id(sessions: sessionmaker[Session], system_id: int) -> int:
    with transaction(sessions) as session:
        task = ServerTask(
            name="Отправка сведений в Mango Office",
            external_system_id=system_id,
            is_enabled=True,
            run_at="00:00",
        )
        session.add(task)
        session.flush()
        return task.id


@pytest.fixture()
def tomorrow(sessions: sessionmaker[Session]) -> date:
    with sessions() as session:
        return clinic_now(session).date() + timedelta(days=1)


class Clinic:
    """Builds doctors, patients and appointments."""

    def __init__(self, sessions: sessionmaker[Session], day: date) -> None:
        self.sessions = sessions
        self.day = day
        with transaction(sessions) as session:
            doctor = Employee(
                last_name="Терапевтов", first_name="Олег", patronymic="Ильич", specialty="Терапевт"
            )
            service = Service(code="B01.047.001", name="Приём терапевта", duration_min=20, price=0)
            session.add_all([doctor, service])
            session.flush()
            self.doctor_id, self.service_id = doctor.id, service.id
        self._n = 0

    def patient(self, phone: str | None = None, *, consent: bool = True, last_name: str = "Иванов") -> int:
        self._n += 1
        with transaction(self.sessions) as session:
            p = Patient(
                last_name=last_name,
                first_name="Пётр",
                patronymic="Сергеевич",
                phone=phone if phone is not None else f"+7916{self._n:07d}",
                consent_calls=consent,
            )
            session.add(p)
            session.flush()
            return p.id

    def appointment(
        self,
        patient_id: int | None = None,
        *,
        at: time = time(10, 30),
        day: date | None = None,
        status: str = "booked",
        extra_info: str = "",
    ) -> int:
        pid = patient_id if patient_id is not None else self.patient()
        with transaction(self.sessions) as session:
            a = Appointment(
                patient_id=pid,
                doctor_id=self.doctor_id,
                service_id=self.service_id,
                starts_at=datetime.combine(day or self.day, at),
                status=status,
                extra_info=extra_info,
                cancel_reason="",
                confirmation_status="",
                confirmation_source="",
            )
            session.add(a)
            session.flush()
            return a.id

    def get(self, appointment_id: int) -> Appointment:
        with self.sessions() as session:
            appointment = session.get(Appointment, appointment_id)
            assert appointment is not None
            return appointment


@pytest.fixture()
def clinic(sessions: sessionmaker[Session], tomorrow: date) -> Clinic:
    return Clinic(sessions, tomorrow)
