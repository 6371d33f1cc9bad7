"""Appointments («талоны»): booking, changes, cancellation, the day's list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from clinic.clock import clinic_now, clinic_zone
from clinic.models import (
    APPOINTMENT_STATUSES,
    STATUS_BOOKED,
    STATUS_CANCELLED,
    Appointment,
    Cabinet,
    Employee,
    Patient,
    Service,
    utcnow,
)
from clinic.models.schedule import CONFIRMATION_STATUSES, STATUS_DONE, STATUS_NO_SHOW
from clinic.services import ValidationError
from clinic.services.schedule.common import (
    ConflictError,
    M,
    NotFoundError,
    ensure_unique,
    find_by,
    get_row,
    key_matches,
)
from clinic.services.schedule.fields import DB_INT_MAX, EXTERNAL_ID, MAX_DURATION_MIN, Field, check_key, clean

DEFAULT_DURATION_MIN = 20
# Statuses that no longer occupy the doctor's time, so another patient may take the slot.
FREE_STATUSES = frozenset({STATUS_CANCELLED, STATUS_NO_SHOW})
CONFIRMED = "confirmed"  # confirmation_status, as the robot writes it
SOURCE_REGISTRAR = "registrar"  # confirmation_source of staff; the robot's answers never overwrite it


_ID_RANGE = {"min_value": 1, "max_value": DB_INT_MAX}
APPOINTMENT_FIELDS: tuple[Field, ...] = (
    EXTERNAL_ID,
    Field("patient_id", "int", "Пациент", **_ID_RANGE, doc="Our patient id. Give it or patient_external_id."),
    Field("patient_external_id", "str", "Пациент (код в МИС)", max_len=64),
    Field("doctor_id", "int", "Врач", **_ID_RANGE, doc="Our employee id. Give it or doctor_external_id."),
    Field("doctor_external_id", "str", "Врач (код в МИС)", max_len=64),
    Field("cabinet_id", "int", "Кабинет", nullable=True, **_ID_RANGE),
    Field(
        "cabinet_number",
        "str",
        "Кабинет (номер)",
        nullable=True,
        max_len=16,
        doc="Alternative to cabinet_id.",
    ),
    Field("service_id", "int", "Услуга", nullable=True, **_ID_RANGE),
    Field("service_code", "str", "Услуга (код)", nullable=True, max_len=32, doc="Alternative to service_id."),
    Field(
        "starts_at",
        "datetime",
        "Время приёма",
        required=True,
        doc="Clinic-local wall-clock time, e.g. 2026-03-01T09:30. A time with an offset "
        "(…+03:00, …Z) is converted to the clinic's time zone.",
    ),
    Field(
        "duration_min",
        "int",
        "Длительность, мин",
        min_value=1,
        max_value=MAX_DURATION_MIN,
        doc="Defaults to the service's duration, else 20.",
    ),
    Field(
        "status",
        "enum",
        "Статус",
        choices=tuple(APPOINTMENT_STATUSES),
        doc="Defaults to booked. Setting cancelled cancels the appointment (see /cancel).",
    ),
    Field("extra_info", "text", "Доп. информация", max_len=2000),
    Field("cancel_reason", "str", "Причина отмены", max_len=300, doc="Only together with status cancelled."),
)

CANCEL_FIELDS: tuple[Field, ...] = (Field("reason", "str", "Причина отмены", required=True, max_len=300),)


# --------------------------------------------------------------------------- appointments


def get_appointment(session: Session, appointment_id: int) -> Appointment:
    return get_row(session, Appointment, appointment_id, "Запись на приём")


def get_appointment_by_external(session: Session, external_id: str) -> Appointment:
    row = find_by(session, Appointment.external_id, check_key(external_id, "external_id", 64))
    if row is None:
        raise NotFoundError(f"Запись на приём с кодом МИС «{external_id}» не найдена")
    return row


def _resolve(
    session: Session,
    values: dict[str, Any],
    id_field: str,
    alt_field: str,
    alt_column: Any,
    model: type[M],
    what: str,
) -> None:
    """Turn `alt_field` (a МИС code, number or code) into `id_field`, checking the row exists."""
    if id_field in values and alt_field in values:
        raise ValidationError({alt_field: f"Укажите либо {id_field}, либо {alt_field}"})
    if alt_field in values:
        alt = values.pop(alt_field)
        if alt is None:
            values[id_field] = None
            return
        found = find_by(session, alt_column, alt)
        if found is None:
            raise ValidationError({alt_field: f"{what} «{alt}» не найден"})
        values[id_field] = found.id
    elif values.get(id_field) is not None and session.get(model, values[id_field]) is None:
        raise ValidationError({id_field: f"{what} №{values[id_field]} не найден"})


def _resolve_refs(session: Session, values: dict[str, Any]) -> None:
    if values.get("patient_external_id") == "" or values.get("doctor_external_id") == "":
        key = "patient_external_id" if values.get("patient_external_id") == "" else "doctor_external_id"
        raise ValidationError({key: "Обязательное поле"})
    _resolve(session, values, "patient_id", "patient_external_id", Patient.external_id, Patient, "Пациент")
    _resolve(session, values, "doctor_id", "doctor_external_id", Employee.external_id, Employee, "Врач")
    _resolve(session, values, "cabinet_id", "cabinet_number", Cabinet.number, Cabinet, "Кабинет")
    _resolve(session, values, "service_id", "service_code", Service.code, Service, "Услуга")


def _to_clinic_time(session: Session, values: dict[str, Any]) -> None:
    moment = values.get("starts_at")
    if moment is None:
        return
    # Checked before converting too: shifting 9999-12-31T23:00-05:00 would overflow datetime.
    if not 2000 <= moment.year <= 2099:
        raise ValidationError({"starts_at": "Год приёма должен быть от 2000 до 2099"})
    if moment.tzinfo is not None:
        moment = moment.astimezone(clinic_zone(session)).replace(tzinfo=None)
    if not 2000 <= moment.year <= 2099:
        raise ValidationError({"starts_at": "Год приёма должен быть от 2000 до 2099"})
    values["starts_at"] = moment


def _lock_doctor(session: Session, doctor_id: int) -> None:
    """Make concurrent bookings of one doctor check-and-insert one after the other."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE and runs plain SELECTs outside any transaction, so two
        # bookings could both see a free slot. A no-op write takes the database's write lock
        # now (the other booking waits on busy_timeout) and the check below reads the latest
        # data. Raw SQL so that the ORM's onupdate does not touch updated_at.
        session.execute(text("UPDATE employees SET id = id WHERE id = :id"), {"id": doctor_id})
    else:
        # PostgreSQL: the row lock queues the other booking until this transaction ends; READ
        # COMMITTED then lets its overlap query see this booking.
        session.execute(select(Employee.id).where(Employee.id == doctor_id).with_for_update())


def _check_doctor_free(session: Session, appt: Appointment) -> None:
    """ConflictError if the doctor has another live appointment overlapping `appt`."""
    _lock_doctor(session, appt.doctor_id)
    start = appt.starts_at
    end = start + timedelta(minutes=appt.duration_min)
    # Interval arithmetic differs between SQLite and PostgreSQL, so the database narrows the
    # candidates by start time and the exact overlap is checked here.
    query = select(Appointment).where(
        Appointment.doctor_id == appt.doctor_id,
        Appointment.status.not_in(FREE_STATUSES),
        Appointment.starts_at < end,
        Appointment.starts_at > start - timedelta(minutes=MAX_DURATION_MIN),
    )
    if appt.id is not None:
        query = query.where(Appointment.id != appt.id)
    for other in session.scalars(query.order_by(Appointment.starts_at)):
        other_end = other.starts_at + timedelta(minutes=other.duration_min)
        if other_end > start:
            raise ConflictError(
                {
                    "starts_at": (
                        f"Врач уже занят в это время: запись №{other.id} "
                        f"с {other.starts_at:%H:%M} до {other_end:%H:%M} {other.starts_at:%d.%m.%Y}"
                    )
                }
            )


def _apply_appointment(
    session: Session,
    appt: Appointment,
    values: dict[str, Any],
    *,
    creating: bool,
    allow_past: bool,
) -> bool:
    """Validate `values` against `appt` and the stored schedule, then assign; True if changed."""
    _to_clinic_time(session, values)
    _resolve_refs(session, values)
    if creating:
        if values.get("patient_id") is None:
            raise ValidationError({"patient_id": "Укажите пациента: patient_id или patient_external_id"})
        if values.get("doctor_id") is None:
            raise ValidationError({"doctor_id": "Укажите врача: doctor_id или doctor_external_id"})
        if "duration_min" not in values:
            service = session.get(Service, values["service_id"]) if values.get("service_id") else None
            values["duration_min"] = service.duration_min if service else DEFAULT_DURATION_MIN
    changes = {k: v for k, v in values.items() if creating or getattr(appt, k) != v}
    if not changes:
        return False  # re-sending what is stored is a no-op, even for a cancelled appointment
    if not creating and appt.status == STATUS_CANCELLED:
        raise ConflictError({"status": "Запись отменена: изменить её нельзя"})
    status = changes.get("status", appt.status if not creating else STATUS_BOOKED)
    if changes.get("cancel_reason") and status != STATUS_CANCELLED:
        raise ValidationError({"cancel_reason": "Причину отмены указывают только вместе с status: cancelled"})
    if status == STATUS_CANCELLED and not creating and appt.status == STATUS_DONE:
        raise ConflictError({"status": "Приём уже состоялся: отменить его нельзя"})
    if "doctor_id" in changes:
        doctor = session.get(Employee, changes["doctor_id"])
        if doctor is not None and not doctor.is_active:
            raise ValidationError({"doctor_id": f"Врач {doctor.short_name} не работает (is_active: false)"})

    if not creating and "starts_at" in changes:
        # A moved appointment needs a fresh confirmation from the patient; the old answer
        # leaves «Доп. информация» too unless the caller writes that text himself.
        appt.confirmation_status = appt.confirmation_source = ""
        appt.confirmed_at = None
        if "extra_info" not in changes:
            appt.extra_info = with_confirmation_text(appt.extra_info, "")
    for key, value in changes.items():
        setattr(appt, key, value)
    appt.status = status

    timing = creating or bool({"starts_at", "duration_min", "doctor_id", "status"} & changes.keys())
    if timing and status == STATUS_BOOKED and not allow_past:
        end = appt.starts_at + timedelta(minutes=appt.duration_min)
        if end <= clinic_now(session):
            raise ValidationError({"starts_at": "Время приёма уже прошло: записать на него нельзя"})
    if timing and status not in FREE_STATUSES:
        _check_doctor_free(session, appt)
    return True


def create_appointment(
    session: Session, data: Mapping[str, Any], *, allow_past: bool = False, forms: bool = False
) -> Appointment:
    """Book an appointment. A booked one must not be over already unless `allow_past`
    (importing history); the doctor must be free at that time."""
    values = clean(APPOINTMENT_FIELDS, data, partial=False, forms=forms)
    ensure_unique(
        session,
        Appointment.external_id,
        values.get("external_id"),
        None,
        "external_id",
        "Запись с таким кодом МИС уже есть",
    )
    appt = Appointment(extra_info="", cancel_reason="", confirmation_status="", confirmation_source="")
    _apply_appointment(session, appt, values, creating=True, allow_past=allow_past)
    session.add(appt)
    session.flush()
    return appt


def update_appointment(
    session: Session,
    appointment_id: int,
    data: Mapping[str, Any],
    *,
    allow_past: bool = False,
    forms: bool = False,
) -> Appointment:
    """Change the given fields. A cancelled appointment cannot change; a moved one loses its
    confirmation; status cancelled works like `cancel_appointment`."""
    appt = get_appointment(session, appointment_id)
    _update_appointment(session, appt, clean(APPOINTMENT_FIELDS, data, partial=True, forms=forms), allow_past)
    return appt


def _update_appointment(
    session: Session, appt: Appointment, values: dict[str, Any], allow_past: bool
) -> None:
    ensure_unique(
        session,
        Appointment.external_id,
        values.get("external_id"),
        appt.id,
        "external_id",
        "Запись с таким кодом МИС уже есть",
    )
    if _apply_appointment(session, appt, values, creating=False, allow_past=allow_past):
        session.flush()


def upsert_appointment(
    session: Session,
    external_id: str,
    data: Mapping[str, Any],
    *,
    allow_past: bool = False,
    forms: bool = False,
) -> tuple[Appointment, bool]:
    """Create or update the appointment with this МИС code; (appointment, created)."""
    key = check_key(external_id, "external_id", 64)
    key_matches(data, "external_id", key)
    existing = find_by(session, Appointment.external_id, key)
    if existing is None:
        appt = create_appointment(session, {**data, "external_id": key}, allow_past=allow_past, forms=forms)
        return appt, True
    values = clean(APPOINTMENT_FIELDS, data, partial=True, forms=forms)
    _update_appointment(session, existing, values, allow_past)
    return existing, False


def cancel_appointment(
    session: Session, appointment_id: int, data: Mapping[str, Any], *, forms: bool = False
) -> Appointment:
    """Cancel with a reason ({"reason": ...}). Cancelling again changes nothing; a visit that
    already took place (done) cannot be cancelled."""
    reason = clean(CANCEL_FIELDS, data, partial=False, forms=forms)["reason"]
    appt = get_appointment(session, appointment_id)
    if appt.status == STATUS_CANCELLED:
        return appt
    _apply_appointment(
        session, appt, {"status": STATUS_CANCELLED, "cancel_reason": reason}, creating=False, allow_past=True
    )
    session.flush()
    return appt


def with_confirmation_text(extra: str, text: str) -> str:
    """«Доп. информация» with `text` as its first line in place of any earlier confirmation
    phrase (the robot's or staff's); whatever else staff wrote stays."""
    phrases = {phrase for phrase in CONFIRMATION_STATUSES.values() if phrase}
    lines = [line for line in (extra or "").splitlines() if line.strip() not in phrases]
    return "\n".join([text, *lines] if text else lines)


def confirm_appointment(session: Session, appointment_id: int, *, source: str) -> bool:
    """«Подтвердить запись» by staff: the fields the robot writes (status, source, time and the
    phrase in «Доп. информация»). True if it changed; confirming again changes nothing, so the
    robot's stale-answer rule keeps the first confirmation's time."""
    appt = get_appointment(session, appointment_id)
    if appt.status != STATUS_BOOKED:
        raise ConflictError({"status": f"Запись в статусе «{appt.status_title}»: подтвердить её нельзя"})
    if appt.confirmation_status == CONFIRMED:
        return False
    appt.confirmation_status = CONFIRMED
    appt.confirmation_source = source
    appt.confirmed_at = utcnow()
    appt.extra_info = with_confirmation_text(appt.extra_info, CONFIRMATION_STATUSES[CONFIRMED])
    session.flush()
    return True


def appointments_for_day(session: Session, day: date, *, doctor_id: int | None = None) -> list[Appointment]:
    """Every appointment starting on `day` (clinic time), cancelled ones included, by time."""
    if not 2000 <= day.year <= 2099:
        return []  # no appointment can be stored there, and date.max + 1 day would overflow
    start = datetime.combine(day, datetime.min.time())
    query = (
        select(Appointment)
        .where(Appointment.starts_at >= start, Appointment.starts_at < start + timedelta(days=1))
        .options(
            selectinload(Appointment.patient),
            selectinload(Appointment.doctor),
            selectinload(Appointment.cabinet),
            selectinload(Appointment.service),
        )
        .order_by(Appointment.starts_at, Appointment.doctor_id, Appointment.id)
    )
    if doctor_id is not None:
        query = query.where(Appointment.doctor_id == doctor_id)
    return list(session.scalars(query))
