"""Template bodies with `{placeholder}` fields, filled by plain substitution (no code runs).

`{{` and `}}` stand for literal braces. Saving a body with an unknown placeholder is
refused with a Russian message naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from clinic.models import Appointment, ClinicSettings, Patient
from clinic.phones import display
from clinic.smsru.parts import count_parts

# key -> label shown in the picker on the right of the template editor
PLACEHOLDERS: dict[str, str] = {
    "patient_name": "ФИО пациента",
    "patient_first_patronymic": "Имя и отчество пациента",
    "date": "Дата приёма",
    "time": "Время приёма",
    "doctor": "Врач",
    "cabinet": "Кабинет",
    "service": "Услуга",
    "clinic": "Наименование клиники",
    "address": "Адрес клиники",
    "clinic_phone": "Телефон клиники",
}

# the fields that only an appointment («талон») can fill
APPOINTMENT_FIELDS = frozenset({"date", "time", "doctor", "cabinet", "service"})

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True)
class Preview:
    text: str
    chars: int
    parts: int
    encoding: str
    too_long: bool


def problems(body: str) -> list[str]:
    """Russian descriptions of what is wrong with the placeholders of `body` (empty if fine)."""
    found: list[str] = []
    for match in _TOKEN.finditer(body):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            found.append("Непарная фигурная скобка: для самой скобки пишите {{ или }}")
            continue
        key = (match.group(1) or "").strip()
        if key not in PLACEHOLDERS:
            found.append(f"Неизвестное поле подстановки {{{key}}}")
    return list(dict.fromkeys(found))


def render(body: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders from `values`; unknown ones are left as written (checked on save)."""

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        key = (match.group(1) or "").strip() if match.group(1) is not None else None
        if key is not None and key in values:
            return values[key]
        return token

    return _TOKEN.sub(repl, body)


def fields_of(body: str) -> list[str]:
    """The known placeholders `body` uses, in order of first use."""
    keys = [(m.group(1) or "").strip() for m in _TOKEN.finditer(body) if m.group(1) is not None]
    return list(dict.fromkeys(k for k in keys if k in PLACEHOLDERS))


def needs_appointment(body: str) -> bool:
    """Whether the body has fields only an appointment can fill (date, time, doctor...)."""
    return any(key in APPOINTMENT_FIELDS for key in fields_of(body))


def missing_fields(body: str, values: Mapping[str, str]) -> list[str]:
    """Labels of the fields `body` uses that `values` leaves empty: a text rendered with
    them would read «вы записаны на  в  к врачу ,» and must not leave as it is."""
    return [PLACEHOLDERS[key] for key in fields_of(body) if not (values.get(key) or "").strip()]


def _ru_date(day: datetime) -> str:
    return day.strftime("%d.%m.%Y")


def appointment_values(
    appointment: Appointment | None, settings: ClinicSettings, patient: Patient | None = None
) -> dict[str, str]:
    patient = patient or (appointment.patient if appointment else None)
    values = {
        "patient_name": patient.full_name if patient else "",
        "patient_first_patronymic": " ".join(p for p in (patient.first_name, patient.patronymic) if p)
        if patient
        else "",
        "date": "",
        "time": "",
        "doctor": "",
        "cabinet": "",
        "service": "",
        "clinic": settings.name or "",
        "address": settings.address or "",
        "clinic_phone": display(settings.phone)
        if settings.phone and settings.phone.startswith("+")
        else settings.phone or "",
    }
    if appointment is not None:
        values["date"] = _ru_date(appointment.starts_at)
        values["time"] = appointment.starts_at.strftime("%H:%M")
        values["doctor"] = appointment.doctor.short_name if appointment.doctor else ""
        cabinet = appointment.cabinet
        values["cabinet"] = (
            (f"каб. {cabinet.number}" + (f" {cabinet.name}" if cabinet.name else "")) if cabinet else ""
        )
        values["service"] = appointment.service.name if appointment.service else ""
    return values


def sample_values(settings: ClinicSettings) -> dict[str, str]:
    """A made-up appointment for the editor's preview."""
    return {
        "patient_name": "Иванова Мария Петровна",
        "patient_first_patronymic": "Мария Петровна",
        "date": "15.03.2027",
        "time": "09:40",
        "doctor": "Смирнов А.В.",
        "cabinet": "каб. 12 Терапия",
        "service": "Приём терапевта первичный",
        "clinic": settings.name or "Клиника",
        "address": settings.address or "ул. Ленина, 1",
        "clinic_phone": settings.phone or "+7 495 123-45-67",
    }


def preview(text: str) -> Preview:
    parts = count_parts(text)
    return Preview(
        text=text, chars=len(text), parts=parts.parts, encoding=parts.encoding, too_long=parts.too_long
    )


def sample_values_for_length() -> dict[str, str]:
    """Typical lengths of real values, to refuse a template that cannot fit in 8 parts."""
    return {
        "patient_name": "Константинопольская Александра Владимировна",
        "patient_first_patronymic": "Александра Владимировна",
        "date": "15.03.2027",
        "time": "09:40",
        "doctor": "Смирнов А.В.",
        "cabinet": "каб. 12 Терапия",
        "service": "Приём терапевта первичный",
        "clinic": "Клиника",
        "address": "ул. Ленина, д. 1",
        "clinic_phone": "+7 495 123-45-67",
    }
