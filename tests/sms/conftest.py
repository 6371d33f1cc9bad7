"""Fixtures for the SMS feature: an sms.ru emulator (manual clock), the clinic's settings
pointing at it, and builders of doctors, patients and appointments."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from flask import Flask
from smsru.support import API_ID, ServerThread, Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web.support import Web
from werkzeug.security import generate_password_hash

from clinic.config import Config
from clinic.db import transaction
from clinic.models import (
    ROLE_ADMIN,
    ROLE_REGISTRAR,
    Appointment,
    Cabinet,
    ClinicSettings,
    Employee,
    Patient,
    Service,
    SmsTemplate,
    User,
)
from emulators.smsru import EmulatorOptions, create_app
from webhooks.app import create_app as create_web_app

# 2026-05-28 09:00 UTC = 12:00 in Moscow: outside the default quiet hours (21..9)
START = datetime(2026, 5, 28, 9, 0, tzinfo=UTC)
TOMORROW_10 = datetime(2026, 5, 29, 10, 0)  # clinic-local, naive, as appointments are stored


@pytest.fixture(scope="session")
def admin_http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


@pytest.fixture()
def make_sms(admin_http: httpx.Client) -> Iterator[Callable[..., Sms]]:
    started: list[Sms] = []

    def make(**options: Any) -> Sms:
        options.setdefault("api_id", API_ID)
        options.setdefault("clock", "manual")
        options.setdefault("start_time", START.timestamp())
        options.setdefault("balance", Decimal("100000"))
        options.setdefault("price_per_part", Decimal("1.50"))
        options.setdefault("daily_limit", 100000)
        app = create_app(EmulatorOptions(**options))
        sms = Sms(ServerThread(app).start(), app.extensions["smsru_emulator"], admin_http)
        started.append(sms)
        return sms

    yield make
    for sms in started:
        sms.emulator.release_holds()
        sms.server.stop()
        sms.emulator.stop()


@pytest.fixture()
def sms(make_sms: Callable[..., Sms]) -> Sms:
    return make_sms()


@pytest.fixture()
def sms_config(config: Config, sms: Sms) -> Config:
    return dataclasses.replace(config, smsru_url=sms.url)


BODY = "{patient_first_patronymic}, ждём вас {date} в {time}, врач {doctor}, {cabinet}. {clinic}"


def add_clinic(s: Session) -> tuple[Employee, Cabinet, Service, SmsTemplate]:
    """Settings with the emulator's api_id (Moscow, quiet hours 21–9), a doctor, a cabinet, a
    service and the default patient template, flushed (the SMS and the reminder tests share it)."""
    s.add(
        ClinicSettings(
            name="Клиника Здоровье",
            address="ул. Ленина, 1",
            phone="+74951234567",
            sms_api_key=API_ID,
            sms_sender="Klinika",
            timezone="Europe/Moscow",
            sms_quiet_from=21,
            sms_quiet_to=9,
        )
    )
    doctor = Employee(last_name="Смирнов", first_name="Андрей", patronymic="Викторович", specialty="Терапевт")
    cabinet = Cabinet(number="12", name="Терапия")
    service = Service(code="T1", name="Приём терапевта", duration_min=20, price=1000)
    tpl = SmsTemplate(name="Напоминание", recipient_type="patient", is_default=True, body=BODY)
    s.add_all([doctor, cabinet, service, tpl])
    s.flush()
    return doctor, cabinet, service, tpl


@pytest.fixture()
def clinic(sessions: sessionmaker[Session]) -> dict[str, int]:
    """add_clinic, two patients and one appointment tomorrow at 10:00 (clinic time)."""
    with transaction(sessions) as s:
        doctor, cabinet, service, tpl = add_clinic(s)
        p1 = Patient(last_name="Иванова", first_name="Мария", patronymic="Петровна", phone="+79161234567")
        p2 = Patient(last_name="Петров", first_name="Олег", patronymic="", phone=None)
        s.add_all([p1, p2])
        s.flush()
        a1 = Appointment(
            patient_id=p1.id,
            doctor_id=doctor.id,
            cabinet_id=cabinet.id,
            service_id=service.id,
            starts_at=TOMORROW_10,
        )
        s.add(a1)
        s.flush()
        return {
            "doctor": doctor.id,
            "cabinet": cabinet.id,
            "service": service.id,
            "patient": p1.id,
            "patient_no_phone": p2.id,
            "template": tpl.id,
            "appointment": a1.id,
        }


@pytest.fixture()
def add_patients(sessions: sessionmaker[Session], clinic: dict[str, int]) -> Callable[..., list[int]]:
    """n patients with distinct mobiles, each booked on the given day (clinic time)."""

    def make(n: int, day: datetime, *, first_phone: int = 79030000000) -> list[int]:
        ids = []
        with transaction(sessions) as s:
            for i in range(n):
                p = Patient(
                    last_name=f"Пациент{i}", first_name="Анна", patronymic="", phone=f"+{first_phone + i}"
                )
                s.add(p)
                s.flush()
                s.add(
                    Appointment(
                        patient_id=p.id,
                        doctor_id=clinic["doctor"],
                        cabinet_id=clinic["cabinet"],
                        starts_at=day + timedelta(minutes=(i % 40) * 15),
                    )
                )
                ids.append(p.id)
        return ids

    return make


# ------------------------------------------------------------------ the SMS pages, as staff

PASSWORD = "Pa55-word-x"
CLINIC_TZ = "Europe/Moscow"


def clinic_tomorrow(zone: str = CLINIC_TZ) -> date:
    return datetime.now(ZoneInfo(zone)).date() + timedelta(days=1)


@pytest.fixture()
def day(sessions: sessionmaker[Session], clinic: dict[str, int]) -> date:
    """The clinic's tomorrow; the fixture's appointment moved to 10:00 of it, real clock."""
    tomorrow = clinic_tomorrow()
    with transaction(sessions) as s:
        settings = s.scalars(select(ClinicSettings)).one()
        settings.sms_quiet_from = settings.sms_quiet_to = 0  # these tests run on the real clock
        s.get(Appointment, clinic["appointment"]).starts_at = datetime.combine(tomorrow, time(10))  # type: ignore[union-attr]
    return tomorrow


def staff_app(sessions: sessionmaker[Session], config: Config) -> Flask:
    """The web app with an admin and a registrar (password PASSWORD); shared with the reminder tests."""
    with transaction(sessions) as s:
        for login, role in (("admin", ROLE_ADMIN), ("reg", ROLE_REGISTRAR)):
            password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
            s.add(User(login=login, full_name=login.title(), password_hash=password_hash, role=role))
    app = create_web_app(config, session_factory=sessions)
    app.config["TESTING"] = True
    return app


def logged_in(app: Flask, login: str) -> Web:
    web = Web(app.test_client())
    assert web.login(login, PASSWORD).status_code == 302
    return web


@pytest.fixture()
def app(sessions: sessionmaker[Session], sms_config: Config, day: date) -> Flask:
    return staff_app(sessions, sms_config)


@pytest.fixture()
def admin(app: Flask) -> Web:
    return logged_in(app, "admin")


@pytest.fixture()
def reg(app: Flask) -> Web:
    return logged_in(app, "reg")
