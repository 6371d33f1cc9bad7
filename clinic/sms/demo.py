"""The demo's SMS side: a demo api_id for the local sms.ru emulator, default templates, and
the emulator's command line for `make run` (launcher/run.py)."""

from __future__ import annotations

import os
import socket

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import ClinicSettings, SmsTemplate

# Accepted only by the local emulator; the real sms.ru would answer 200 (wrong api_id).
DEMO_API_ID = "DEMO0000-0000-4000-8000-000000005155"
DEMO_SENDER = "Zdorovie"

TEMPLATES = (
    (
        "Напоминание о приёме",
        "patient",
        True,
        "{patient_first_patronymic}, вы записаны на {date} в {time} к врачу {doctor}, {cabinet}. "
        "{clinic}, {address}. Тел. {clinic_phone}",
    ),
    (
        "Приём перенесён",
        "patient",
        False,
        "{patient_first_patronymic}, приём перенесён: {date} {time}. {clinic}",
    ),
    ("Врачу: запись пациента", "doctor", True, "К вам записан {patient_name} на {date} {time}, {service}."),
)


def seed_sms(session: Session) -> None:
    """Demo api_id (only if none is set) and the templates (only if there are none)."""
    settings = session.get(ClinicSettings, 1)
    if settings is not None and not settings.sms_api_key:
        settings.sms_api_key = DEMO_API_ID
        settings.sms_sender = settings.sms_sender or DEMO_SENDER
    if session.scalar(select(SmsTemplate.id).limit(1)) is None:
        for name, recipient, default, body in TEMPLATES:
            session.add(SmsTemplate(name=name, recipient_type=recipient, is_default=default, body=body))


def emulator_port() -> int:
    """MIS_SMSRU_EMULATOR_PORT, else 9101 if it is free, else any free port (so a second
    `make run` on the same machine still starts)."""
    if os.environ.get("MIS_SMSRU_EMULATOR_PORT", "").strip():
        return int(os.environ["MIS_SMSRU_EMULATOR_PORT"])
    for port in (9101, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port for the sms.ru emulator")


def emulator_command(python: str, callback_url: str, port: int) -> list[str]:
    """The sms.ru emulator for the demo: our demo api_id and sender, callbacks to the hooks
    listener, deliveries in a few seconds, a little latency."""
    return [
        python, "-m", "emulators.smsru", "--host", "127.0.0.1", "--port", str(port),
        "--api-id", DEMO_API_ID, "--sender", DEMO_SENDER, "--balance", "5000", "--daily-limit", "100000",
        "--callback", callback_url, "--callback-format", "urlencoded", "--callback-retry-delay", "5",
        "--steps", "2,3,5", "--latency", "0.05", "--status-times",
    ]  # fmt: skip
