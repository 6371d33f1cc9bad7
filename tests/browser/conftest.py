"""Playwright against Debian's chromium, with the app served from a background thread.

No browser download happens: `playwright install` is never run; the system chromium is used.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, Appointment, Cabinet, Employee, Patient, Service, User
from clinic.pbx_port import ApplyResult
from clinic.security import hash_password
from webhooks.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_PASSWORD = "Adm1n-pass"
REGISTRAR_PASSWORD = "Reg1str-pass"


class RecordingApplier:
    def __init__(self) -> None:
        self.calls: list[int | None] = []

    def __call__(self, author_id: int | None, *, pending: Mapping[str, object] | None = None) -> ApplyResult:
        self.calls.append(author_id)
        return ApplyResult(ok=True, message="конфигурация применена", revision_id=1)


@pytest.fixture()
def applier() -> RecordingApplier:
    return RecordingApplier()


@pytest.fixture()
def live_url(config: Config, sessions: sessionmaker[Session], applier: RecordingApplier) -> Iterator[str]:
    app = create_app(config, pbx_apply=applier, session_factory=sessions)
    server = make_server("127.0.0.1", 0, app, threaded=True)  # port 0: the OS picks a free one
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture()
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(locale="ru-RU", timezone_id="Europe/Moscow")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture()
def users(sessions: sessionmaker[Session]) -> dict[str, int]:
    with transaction(sessions) as session:
        admin = User(
            login="admin", full_name="Петрова Анна Сергеевна", password_hash=hash_password(ADMIN_PASSWORD),
            role=ROLE_ADMIN, is_active=True, failed_logins=0,
        )  # fmt: skip
        registrar = User(
            login="reg", full_name="Сидорова Мария Ивановна", password_hash=hash_password(REGISTRAR_PASSWORD),
            role=ROLE_REGISTRAR, is_active=True, failed_logins=0,
        )  # fmt: skip
        session.add_all([admin, registrar])
        session.flush()
        return {"admin": admin.id, "reg": registrar.id}


@pytest.fixture()
def day_schedule(sessions: sessionmaker[Session]) -> None:
    """22.05.2025: two appointments with two doctors."""
    with transaction(sessions) as session:
        therapist = Employee(last_name="Терапевтов", first_name="Олег", patronymic="", specialty="Терапевт")
        surgeon = Employee(last_name="Хирургова", first_name="Нина", patronymic="", specialty="Хирург")
        ivanov = Patient(last_name="Иванов", first_name="Пётр", patronymic="Сергеевич", phone="+79161234567")
        smirnova = Patient(last_name="Смирнова", first_name="Анна", patronymic="", phone="+79031112233")
        cabinet = Cabinet(number="105", name="Терапия")
        service = Service(code="B01.047.001", name="Приём терапевта первичный", duration_min=20, price=0)
        session.add_all([therapist, surgeon, ivanov, smirnova, cabinet, service])
        session.flush()
        session.add_all(
            [
                Appointment(
                    patient_id=ivanov.id, doctor_id=therapist.id, cabinet_id=cabinet.id,
                    service_id=service.id, starts_at=datetime(2025, 5, 22, 9, 30),
                    extra_info="Запись подтверждена",
                ),
                Appointment(
                    patient_id=smirnova.id, doctor_id=surgeon.id, starts_at=datetime(2025, 5, 22, 11, 0),
                ),
            ]
        )  # fmt: skip
