"""Patients and employees (doctors, the chief doctor)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clinic.clock import clinic_now
from clinic.models import (
    EMPLOYEE_ROLES,
    Employee,
    Patient,
)
from clinic.phones import match_key
from clinic.services import ValidationError
from clinic.services.schedule.common import (
    NotFoundError,
    Page,
    assign_changed,
    ensure_unique,
    find_by,
    get_row,
    key_matches,
    name_filter,
    paginate,
    search_tokens,
)
from clinic.services.schedule.fields import EXTERNAL_ID, Field, check_key, clean

PATIENT_FIELDS: tuple[Field, ...] = (
    EXTERNAL_ID,
    Field("last_name", "str", "Фамилия", required=True, max_len=100),
    Field("first_name", "str", "Имя", required=True, max_len=100),
    Field("patronymic", "str", "Отчество", max_len=100),
    Field("birth_date", "date", "Дата рождения", nullable=True),
    Field(
        "phone",
        "phone",
        "Мобильный телефон",
        nullable=True,
        doc="Any common notation is accepted; stored and returned as E.164. Used for SMS and calls.",
    ),
    Field("phone_extra", "phone", "Дополнительный телефон", nullable=True),
    Field("consent_sms", "bool", "Согласие на SMS"),
    Field("consent_calls", "bool", "Согласие на звонки"),
    Field("notes", "text", "Примечание", max_len=4000),
)

EMPLOYEE_FIELDS: tuple[Field, ...] = (
    EXTERNAL_ID,
    Field("last_name", "str", "Фамилия", required=True, max_len=100),
    Field("first_name", "str", "Имя", required=True, max_len=100),
    Field("patronymic", "str", "Отчество", max_len=100),
    Field("role", "enum", "Должность", choices=tuple(EMPLOYEE_ROLES)),
    Field("specialty", "str", "Специальность", max_len=200),
    Field("phone", "phone", "Телефон", nullable=True),
    Field("is_active", "bool", "Работает"),
)


# --------------------------------------------------------------------------- patients


def _check_patient(values: Mapping[str, Any], today: date) -> None:
    born = values.get("birth_date")
    if born is not None and not date(1900, 1, 1) <= born <= today:
        raise ValidationError({"birth_date": "Дата рождения должна быть между 1900-01-01 и сегодняшним днём"})


def get_patient(session: Session, patient_id: int) -> Patient:
    return get_row(session, Patient, patient_id, "Пациент")


def get_patient_by_external(session: Session, external_id: str) -> Patient:
    row = find_by(session, Patient.external_id, check_key(external_id, "external_id", 64))
    if row is None:
        raise NotFoundError(f"Пациент с кодом МИС «{external_id}» не найден")
    return row


def create_patient(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Patient:
    values = clean(PATIENT_FIELDS, data, partial=False, forms=forms)
    _check_patient(values, clinic_now(session).date())
    ensure_unique(
        session,
        Patient.external_id,
        values.get("external_id"),
        None,
        "external_id",
        "Пациент с таким кодом МИС уже есть",
    )
    patient = Patient(**values)
    session.add(patient)
    session.flush()
    return patient


def update_patient(
    session: Session, patient_id: int, data: Mapping[str, Any], *, forms: bool = False
) -> Patient:
    patient = get_patient(session, patient_id)
    _update_patient(session, patient, clean(PATIENT_FIELDS, data, partial=True, forms=forms))
    return patient


def _update_patient(session: Session, patient: Patient, values: Mapping[str, Any]) -> None:
    _check_patient(values, clinic_now(session).date())
    ensure_unique(
        session,
        Patient.external_id,
        values.get("external_id"),
        patient.id,
        "external_id",
        "Пациент с таким кодом МИС уже есть",
    )
    if assign_changed(patient, values):
        session.flush()


def upsert_patient(
    session: Session, external_id: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Patient, bool]:
    """Create or update the patient with this МИС code; (patient, created).

    Absent fields keep their stored values (or take defaults on creation), so repeating the
    same request changes nothing.
    """
    key = check_key(external_id, "external_id", 64)
    key_matches(data, "external_id", key)
    existing = find_by(session, Patient.external_id, key)
    if existing is None:
        return create_patient(session, {**data, "external_id": key}, forms=forms), True
    _update_patient(session, existing, clean(PATIENT_FIELDS, data, partial=True, forms=forms))
    return existing, False


def search_patients(
    session: Session, *, q: str = "", phone: str = "", limit: int = 50, offset: int = 0
) -> Page:
    """Patients matching every word of `q` (name prefixes, МИС code, phone digits) and `phone`.

    `phone` matches the mobile or extra number on its last 10 digits, as caller ids are matched.
    """
    query = select(Patient).order_by(Patient.last_name, Patient.first_name, Patient.id)
    for token in search_tokens(q):
        conds = [
            name_filter((Patient.last_name, Patient.first_name, Patient.patronymic), token),
            Patient.external_id == token,
        ]
        digits = "".join(ch for ch in token if ch.isdigit())
        if len(digits) >= 3 and len(digits) == len(token.lstrip("+")):
            conds += [Patient.phone.contains(digits), Patient.phone_extra.contains(digits)]
        query = query.where(or_(*conds))
    if phone.strip():
        key = match_key(phone)
        if len(key) < 10 or len(phone) > 32:
            raise ValidationError({"phone": "Укажите номер телефона: не менее 10 цифр"})
        query = query.where(or_(Patient.phone_key == key, Patient.phone_extra_key == key))
    return paginate(session, query, limit, offset)


# --------------------------------------------------------------------------- employees


def get_employee(session: Session, employee_id: int) -> Employee:
    return get_row(session, Employee, employee_id, "Сотрудник")


def get_employee_by_external(session: Session, external_id: str) -> Employee:
    row = find_by(session, Employee.external_id, check_key(external_id, "external_id", 64))
    if row is None:
        raise NotFoundError(f"Сотрудник с кодом МИС «{external_id}» не найден")
    return row


def create_employee(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Employee:
    values = clean(EMPLOYEE_FIELDS, data, partial=False, forms=forms)
    ensure_unique(
        session,
        Employee.external_id,
        values.get("external_id"),
        None,
        "external_id",
        "Сотрудник с таким кодом МИС уже есть",
    )
    employee = Employee(**values)
    session.add(employee)
    session.flush()
    return employee


def update_employee(
    session: Session, employee_id: int, data: Mapping[str, Any], *, forms: bool = False
) -> Employee:
    employee = get_employee(session, employee_id)
    _update_employee(session, employee, clean(EMPLOYEE_FIELDS, data, partial=True, forms=forms))
    return employee


def _update_employee(session: Session, employee: Employee, values: Mapping[str, Any]) -> None:
    ensure_unique(
        session,
        Employee.external_id,
        values.get("external_id"),
        employee.id,
        "external_id",
        "Сотрудник с таким кодом МИС уже есть",
    )
    if assign_changed(employee, values):
        session.flush()


def upsert_employee(
    session: Session, external_id: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Employee, bool]:
    """Create or update the employee with this МИС code; (employee, created)."""
    key = check_key(external_id, "external_id", 64)
    key_matches(data, "external_id", key)
    existing = find_by(session, Employee.external_id, key)
    if existing is None:
        return create_employee(session, {**data, "external_id": key}, forms=forms), True
    _update_employee(session, existing, clean(EMPLOYEE_FIELDS, data, partial=True, forms=forms))
    return existing, False


def list_employees(
    session: Session,
    *,
    q: str = "",
    role: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    query = select(Employee).order_by(Employee.last_name, Employee.first_name, Employee.id)
    for token in search_tokens(q):
        query = query.where(
            or_(
                name_filter((Employee.last_name, Employee.first_name, Employee.patronymic), token),
                name_filter((Employee.specialty,), token),
                Employee.external_id == token,
            )
        )
    if role is not None:
        if role not in EMPLOYEE_ROLES:
            raise ValidationError({"role": "Допустимые значения: " + ", ".join(EMPLOYEE_ROLES)})
        query = query.where(Employee.role == role)
    if active is not None:
        query = query.where(Employee.is_active.is_(active))
    return paginate(session, query, limit, offset)
