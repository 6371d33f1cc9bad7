"""What the API returns for each record. The field tuples here are also the OpenAPI response
schemas, so the document cannot drift from the actual JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from clinic.models import Appointment, Cabinet, Employee, Patient, Service
from clinic.services.schedule import (
    APPOINTMENT_FIELDS,
    CABINET_FIELDS,
    EMPLOYEE_FIELDS,
    PATIENT_FIELDS,
    SERVICE_FIELDS,
    Field,
)

# Output-only kinds: "id" (a positive integer) and "timestamp" (UTC, with its offset).
ID = Field("id", "id", "Идентификатор")
CREATED = Field("created_at", "timestamp", "Создано", doc="UTC")
UPDATED = Field("updated_at", "timestamp", "Изменено", doc="UTC")
FULL_NAME = Field("full_name", "str", "ФИО", doc="Last, first and patronymic names joined.")


def _nullable(field: Field) -> Field:
    return replace(field, nullable=True, required=False)


def _by_name(fields: Sequence[Field], *names: str) -> list[Field]:
    index = {f.name: f for f in fields}
    return [index[n] for n in names]


PATIENT_OUT: tuple[Field, ...] = (ID, *PATIENT_FIELDS, FULL_NAME, CREATED, UPDATED)
EMPLOYEE_OUT: tuple[Field, ...] = (ID, *EMPLOYEE_FIELDS, FULL_NAME, CREATED, UPDATED)
CABINET_OUT: tuple[Field, ...] = (ID, *CABINET_FIELDS, CREATED, UPDATED)
SERVICE_OUT: tuple[Field, ...] = (ID, *SERVICE_FIELDS, CREATED, UPDATED)
APPOINTMENT_OUT: tuple[Field, ...] = (
    ID,
    *_by_name(APPOINTMENT_FIELDS, "external_id", "patient_id"),
    _nullable(_by_name(APPOINTMENT_FIELDS, "patient_external_id")[0]),
    _by_name(APPOINTMENT_FIELDS, "doctor_id")[0],
    _nullable(_by_name(APPOINTMENT_FIELDS, "doctor_external_id")[0]),
    *_by_name(APPOINTMENT_FIELDS, "cabinet_id", "cabinet_number", "service_id", "service_code", "starts_at"),
    Field("ends_at", "datetime", "Окончание", doc="starts_at + duration_min, clinic-local."),
    *_by_name(APPOINTMENT_FIELDS, "duration_min", "status", "extra_info", "cancel_reason"),
    Field(
        "confirmation_status",
        "enum",
        "Подтверждение",
        choices=("", "confirmed", "cancelled"),
        doc="Set by the confirmation robot; reset when the appointment is moved.",
    ),
    Field("confirmation_source", "str", "Источник подтверждения"),
    Field("confirmed_at", "timestamp", "Подтверждено", nullable=True, doc="UTC"),
    CREATED,
    UPDATED,
)


def _format(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "timestamp":
        moment: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone
        return moment.astimezone(UTC).isoformat(timespec="seconds")
    if kind == "datetime":
        return value.isoformat(timespec="seconds")
    if kind == "date" and isinstance(value, date):
        return value.isoformat()
    if kind == "money":
        return str(Decimal(value).quantize(Decimal("0.01")))
    return value


Getter = Callable[[Any], Any]


def _dump(row: Any, fields: Sequence[Field], getters: dict[str, Getter] | None = None) -> dict[str, Any]:
    getters = getters or {}
    return {
        f.name: _format(f.kind, getters[f.name](row) if f.name in getters else getattr(row, f.name))
        for f in fields
    }


def dump_patient(row: Patient) -> dict[str, Any]:
    return _dump(row, PATIENT_OUT)


def dump_employee(row: Employee) -> dict[str, Any]:
    return _dump(row, EMPLOYEE_OUT)


def dump_cabinet(row: Cabinet) -> dict[str, Any]:
    return _dump(row, CABINET_OUT)


def dump_service(row: Service) -> dict[str, Any]:
    return _dump(row, SERVICE_OUT)


_APPOINTMENT_GETTERS: dict[str, Getter] = {
    "patient_external_id": lambda a: a.patient.external_id,
    "doctor_external_id": lambda a: a.doctor.external_id,
    "cabinet_number": lambda a: a.cabinet.number if a.cabinet else None,
    "service_code": lambda a: a.service.code if a.service else None,
    "ends_at": lambda a: a.starts_at + timedelta(minutes=a.duration_min),
}


def dump_appointment(row: Appointment) -> dict[str, Any]:
    return _dump(row, APPOINTMENT_OUT, _APPOINTMENT_GETTERS)
