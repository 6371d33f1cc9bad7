"""Fixtures for the web UI tests: the app with a recording PBX applier, logged-in clients
that post forms the way a browser does (CSRF token taken from the page), and builders of
users, doctors, patients and appointments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import generate_password_hash

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, Appointment, Cabinet, Employee, Patient, Service, User
from webhooks.app import create_app

from .support import ADMIN_PASSWORD, REGISTRAR_PASSWORD, RecordingApplier, Web


def fast_hash(password: str) -> str:
    """A cheap werkzeug hash for fixture users: verify_password reads the method from the hash,
    and scrypt's deliberate slowness would dominate the run. Users created through the pages
    still get the production hash (clinic.security.hash_password)."""
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


@pytest.fixture()
def applier() -> RecordingApplier:
    return RecordingApplier()


@pytest.fixture()
def app(config: Config, sessions: sessionmaker[Session], applier: RecordingApplier) -> Flask:
    app = create_app(config, pbx_apply=applier, session_factory=sessions)
    app.config["TESTING"] = True
    return app


@pytest.fixture()
def make_user(sessions: sessionmaker[Session]) -> Callable[..., int]:
    def make(
        login: str, password: str = REGISTRAR_PASSWORD, role: str = ROLE_REGISTRAR, **fields: Any
    ) -> int:
        with transaction(sessions) as session:
            user = User(
                login=login,
                full_name=fields.pop("full_name", login.title()),
                password_hash=fast_hash(password),
                role=role,
                is_active=fields.pop("is_active", True),
                failed_logins=fields.pop("failed_logins", 0),
                **fields,
            )
            session.add(user)
            session.flush()
            return user.id

    return make


@pytest.fixture()
def admin_id(make_user: Callable[..., int]) -> int:
    return make_user("admin", ADMIN_PASSWORD, ROLE_ADMIN, full_name="Петрова Анна Сергеевна")


@pytest.fixture()
def registrar_id(make_user: Callable[..., int]) -> int:
    return make_user("reg", REGISTRAR_PASSWORD, ROLE_REGISTRAR, full_name="Сидорова Мария Ивановна")


@pytest.fixture()
def anon(app: Flask) -> Web:
    return Web(app.test_client())


@pytest.fixture()
def admin_web(app: Flask, admin_id: int) -> Web:
    web = Web(app.test_client())
    assert web.login("admin", ADMIN_PASSWORD).status_code == 302
    return web


@pytest.fixture()
def registrar_web(app: Flask, registrar_id: int, admin_id: int) -> Web:
    web = Web(app.test_client())
    assert web.login("reg", REGISTRAR_PASSWORD).status_code == 302
    return web


@pytest.fixture()
def fetch(sessions: sessionmaker[Session]) -> Callable[[type, int], Any]:
    """A fresh, detached copy of a row, read after the app committed."""

    def load(model: type, ident: int) -> Any:
        with transaction(sessions) as session:
            row = session.get(model, ident)
            assert row is not None
            session.expunge(row)
            return row

    return load


@pytest.fixture()
def clinic(sessions: sessionmaker[Session]) -> Callable[..., Any]:
    """Builders of schedule rows: clinic("doctor"), clinic("patient", last_name=...), ..."""

    def build(kind: str, **fields: Any) -> int:
        with transaction(sessions) as session:
            if kind == "doctor":
                row: Any = Employee(
                    last_name=fields.get("last_name", "Терапевтов"),
                    first_name=fields.get("first_name", "Олег"),
                    patronymic=fields.get("patronymic", "Ильич"),
                    specialty=fields.get("specialty", "Терапевт"),
                    role="doctor",
                    is_active=True,
                )
            elif kind == "patient":
                row = Patient(
                    last_name=fields["last_name"],
                    first_name=fields.get("first_name", "Пётр"),
                    patronymic=fields.get("patronymic", ""),
                    birth_date=fields.get("birth_date"),
                    phone=fields.get("phone"),
                    phone_extra=fields.get("phone_extra"),
                    consent_sms=fields.get("consent_sms", True),
                    consent_calls=fields.get("consent_calls", True),
                    notes="",
                )
            elif kind == "cabinet":
                row = Cabinet(number=fields["number"], name=fields.get("name", ""), is_active=True)
            elif kind == "service":
                row = Service(
                    code=fields["code"], name=fields["name"], duration_min=20, price=0, is_active=True
                )
            elif kind == "appointment":
                row = Appointment(
                    patient_id=fields["patient_id"],
                    doctor_id=fields["doctor_id"],
                    cabinet_id=fields.get("cabinet_id"),
                    service_id=fields.get("service_id"),
                    starts_at=fields["starts_at"],
                    duration_min=20,
                    status=fields.get("status", "booked"),
                    extra_info=fields.get("extra_info", ""),
                    cancel_reason="",
                    confirmation_status="",
                    confirmation_source="",
                )
            else:
                raise ValueError(kind)
            session.add(row)
            session.flush()
            return row.id

    return build
