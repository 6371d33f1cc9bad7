"""The clinic's directory and bookings: patients, employees, cabinets, services, appointments.

One set of rules for every caller (the МИС over the REST API, the registrar's pages): each
entity has a tuple of `Field`s that says how a raw value is checked and converted; the
functions below add the rules that need the database (references exist, keys are unique,
a doctor is not booked twice) and change nothing unless all of it passes. They flush, never
commit: the caller owns the transaction, so a failed request leaves no half-written rows.

Values come as JSON (`forms=False`: types are strict, unknown keys are rejected) or as HTML
form text (`forms=True`: "5", "on", "" are converted, unknown keys such as a CSRF token are
ignored).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from clinic.models import (
    APPOINTMENT_STATUSES,
    EMPLOYEE_ROLES,
    STATUS_BOOKED,
    STATUS_CANCELLED,
    Appointment,
    Cabinet,
    ClinicSettings,
    Employee,
    Patient,
    Service,
)
from clinic.models.schedule import STATUS_DONE, STATUS_NO_SHOW
from clinic.phones import PhoneError, match_key, normalize
from clinic.services import ValidationError, parse_bool, parse_int

DB_INT_MAX = 2_147_483_647  # PostgreSQL `integer`; larger ids would fail in the driver, not here
MAX_DURATION_MIN = 720  # one appointment is at most a 12-hour shift; bounds the overlap query
DEFAULT_DURATION_MIN = 20
DEFAULT_TIMEZONE = "Europe/Moscow"
# Statuses that no longer occupy the doctor's time, so another patient may take the slot.
FREE_STATUSES = frozenset({STATUS_CANCELLED, STATUS_NO_SHOW})

_LINE_BAD = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # multi-line text keeps \t \n \r
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_MONEY = re.compile(r"\d{1,8}(\.\d{1,2})?")


class ConflictError(ValidationError):
    """Valid input that clashes with stored data: a taken key, a busy doctor, a closed record."""


class NotFoundError(LookupError):
    """The record asked for does not exist; the message is Russian, for the user."""


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One input field. `kind` is one of KINDS; the OpenAPI document is built from these too."""

    name: str
    kind: str
    label: str
    required: bool = False  # must be given (and not empty) when the record is created
    nullable: bool = False  # null (or "" for text kinds) stores NULL
    max_len: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""


KINDS = frozenset({"str", "text", "int", "bool", "date", "datetime", "phone", "enum", "money"})


class _Invalid(Exception):
    """A single field's problem; collected into one ValidationError."""


def _text(field: Field, value: Any, forms: bool) -> str:
    if not isinstance(value, str):
        raise _Invalid("Ожидается строка")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("Недопустимые символы") from None  # lone surrogates from "\ud800" escapes
    bad = _TEXT_BAD if field.kind == "text" else _LINE_BAD
    if bad.search(value):
        raise _Invalid("Недопустимые управляющие символы")
    value = value.strip()
    if field.max_len is not None and len(value) > field.max_len:
        raise _Invalid(f"Не длиннее {field.max_len} символов")
    return value


def _int(field: Field, value: Any, forms: bool) -> int:
    number = parse_int(value) if forms else value
    if isinstance(number, bool) or not isinstance(number, int):
        raise _Invalid("Ожидается целое число")
    low = field.min_value if field.min_value is not None else -DB_INT_MAX
    high = field.max_value if field.max_value is not None else DB_INT_MAX
    if not low <= number <= high:
        raise _Invalid(f"Допустимо от {low} до {high}")
    return number


def _bool(value: Any, forms: bool) -> bool:
    flag = parse_bool(value) if forms else value
    if not isinstance(flag, bool):
        raise _Invalid("Ожидается true или false")
    return flag


def _date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise _Invalid("Ожидается дата в формате ГГГГ-ММ-ДД")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise _Invalid("Такой даты не существует") from None


def _datetime(value: Any) -> datetime:
    text = value.strip() if isinstance(value, str) else ""
    if not _DATETIME.fullmatch(text):
        raise _Invalid("Ожидается дата и время ISO 8601, например 2026-03-01T09:30")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid("Такой даты или времени не существует") from None
    return moment.replace(microsecond=0)


def _money(value: Any, forms: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid('Ожидается сумма, например 1500 или "1500.50"')
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid("Ожидается конечное число")
    text = str(value).strip().replace(",", ".") if isinstance(value, str) else repr(value)
    if isinstance(value, str) and not _MONEY.fullmatch(text):
        raise _Invalid("Сумма: до 8 цифр и не более 2 знаков после точки")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise _Invalid("Ожидается сумма") from None
    if amount < 0 or amount >= Decimal("100000000"):
        raise _Invalid("Сумма должна быть от 0 до 99999999.99")
    if amount != amount.quantize(Decimal("0.01")):
        raise _Invalid("Не более 2 знаков после точки")
    return amount.quantize(Decimal("0.01"))


def _parse(field: Field, value: Any, forms: bool) -> Any:
    """The clean value of one field, or _Invalid with a Russian reason."""
    if forms and isinstance(value, str) and not value.strip() and field.kind not in ("str", "text", "bool"):
        value = None  # an empty form input means "no value"
    if value is None:
        if field.nullable:
            return None
        if field.kind in ("str", "text") and not field.required:
            return ""  # МИС exports send null for an empty patronymic; store it as empty
        raise _Invalid("Обязательное поле" if field.required else "Значение не может быть пустым")
    kind = field.kind
    if kind in ("str", "text", "phone", "enum"):
        text = _text(field if kind != "phone" else Field(field.name, "str", "", max_len=32), value, forms)
        if kind == "phone":
            if not text and field.nullable:
                return None
            try:
                return normalize(text)
            except PhoneError as exc:
                raise _Invalid(str(exc)) from None
        if kind == "enum":
            if text not in field.choices:
                raise _Invalid("Допустимые значения: " + ", ".join(field.choices))
            return text
        if not text:
            if field.required:
                raise _Invalid("Обязательное поле")
            return None if field.nullable else ""
        return text
    if kind == "int":
        return _int(field, value, forms)
    if kind == "bool":
        return _bool(value, forms)
    if kind == "date":
        return _date(value)
    if kind == "datetime":
        return _datetime(value)
    if kind == "money":
        return _money(value, forms)
    raise AssertionError(f"unknown field kind {kind!r}")


def clean(
    fields: Sequence[Field], data: Mapping[str, Any], *, partial: bool, forms: bool = False
) -> dict[str, Any]:
    """Check `data` against `fields`: the clean values of the keys given, or ValidationError.

    `partial` (an update) skips the required-field check for absent keys.
    """
    if not isinstance(data, Mapping):
        raise ValidationError({"": "Ожидается объект с полями"})
    known = {f.name: f for f in fields}
    errors: dict[str, str] = {}
    if not forms:
        unknown = [str(k) for k in data if k not in known]
        for key in unknown[:20]:
            errors[_safe_key(key)] = "Неизвестное поле"
    result: dict[str, Any] = {}
    for field in fields:
        if field.name not in data:
            if field.required and not partial:
                errors[field.name] = "Обязательное поле"
            continue
        try:
            result[field.name] = _parse(field, data[field.name], forms)
        except _Invalid as exc:
            errors[field.name] = str(exc)
    if errors:
        raise ValidationError(errors)
    return result


def _safe_key(key: str) -> str:
    """An unknown key as it can be echoed back: valid UTF-8, not too long."""
    return key.encode("utf-8", "replace").decode("utf-8")[:64]


def check_key(value: str, label: str, max_len: int) -> str:
    """A natural key taken from the URL (external_id, cabinet number, service code)."""
    text = value.strip()
    if not text or len(text) > max_len or _LINE_BAD.search(text):
        raise ValidationError({label: f"Ожидается непустая строка до {max_len} символов"})
    return text


# --------------------------------------------------------------------------- entity fields

_EXTERNAL = Field(
    "external_id",
    "str",
    "Код в МИС",
    nullable=True,
    max_len=64,
    doc="The record's id in the МИС; unique; the key of the idempotent PUT .../by-external/{external_id}.",
)

PATIENT_FIELDS: tuple[Field, ...] = (
    _EXTERNAL,
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
    _EXTERNAL,
    Field("last_name", "str", "Фамилия", required=True, max_len=100),
    Field("first_name", "str", "Имя", required=True, max_len=100),
    Field("patronymic", "str", "Отчество", max_len=100),
    Field("role", "enum", "Должность", choices=tuple(EMPLOYEE_ROLES)),
    Field("specialty", "str", "Специальность", max_len=200),
    Field("phone", "phone", "Телефон", nullable=True),
    Field("is_active", "bool", "Работает"),
)

CABINET_FIELDS: tuple[Field, ...] = (
    Field(
        "number",
        "str",
        "Номер кабинета",
        required=True,
        max_len=16,
        doc="Unique; the key of PUT /cabinets/by-number/{number}.",
    ),
    Field("name", "str", "Название", max_len=200),
    Field("is_active", "bool", "Используется"),
)

SERVICE_FIELDS: tuple[Field, ...] = (
    Field(
        "code",
        "str",
        "Код услуги",
        required=True,
        max_len=32,
        doc="Unique; the key of PUT /services/by-code/{code}.",
    ),
    Field("name", "str", "Наименование", required=True, max_len=300),
    Field("duration_min", "int", "Длительность, мин", min_value=1, max_value=MAX_DURATION_MIN),
    Field(
        "price",
        "money",
        "Цена",
        doc="Roubles; a number or a decimal string on input, a decimal string on output.",
    ),
    Field("is_active", "bool", "Оказывается"),
)

_ID_RANGE = {"min_value": 1, "max_value": DB_INT_MAX}
APPOINTMENT_FIELDS: tuple[Field, ...] = (
    _EXTERNAL,
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


# --------------------------------------------------------------------------- shared helpers

M = TypeVar("M", Patient, Employee, Cabinet, Service, Appointment)


@dataclass(frozen=True)
class Page:
    """One page of a list plus the total count matching the filter."""

    items: list[Any]
    total: int
    limit: int
    offset: int


def _get(session: Session, model: type[M], record_id: int, what: str) -> M:
    # Ids past the database integer range cannot exist; asking the driver would raise instead.
    row = session.get(model, record_id) if 1 <= record_id <= DB_INT_MAX else None
    if row is None:
        raise NotFoundError(f"{what} №{record_id} не найден")
    return row


def _by(session: Session, column: Any, value: str) -> Any:
    return session.scalars(select(column.class_).where(column == value)).first()


def _page(session: Session, query: Select[Any], limit: int, offset: int) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items=items, total=total, limit=limit, offset=offset)


def _unique(session: Session, column: Any, value: Any, own_id: int | None, field: str, message: str) -> None:
    """ConflictError when another row already holds `value` in a unique column."""
    if value is None:
        return
    other = session.scalars(select(column.class_.id).where(column == value)).first()
    if other is not None and other != own_id:
        raise ConflictError({field: f"{message} (№{other})"})


def _assign(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; True if anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _key_matches(data: Mapping[str, Any], field: str, key: str) -> None:
    if field in data and data[field] != key:
        raise ValidationError({field: "Не совпадает со значением в адресе запроса"})


def _name_filter(columns: Iterable[Any], token: str) -> Any:
    """A case-insensitive prefix match of `token` against any of `columns`.

    SQLite's LIKE and lower() fold ASCII only, so Cyrillic case is handled by also trying the
    spellings people store names in (иванов / ИВАНОВ / Иванов); PostgreSQL's ILIKE folds them itself.
    """
    escaped = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    variants = {escaped, escaped.lower(), escaped.upper(), escaped.capitalize()}
    return or_(*(col.ilike(v + "%", escape="\\") for col in columns for v in variants))


def _search_tokens(q: str) -> list[str]:
    text = check_key(q, "q", 100) if q.strip() else ""
    return text.split()[:5]


# --------------------------------------------------------------------------- patients


def _check_patient(values: Mapping[str, Any], today: date) -> None:
    born = values.get("birth_date")
    if born is not None and not date(1900, 1, 1) <= born <= today:
        raise ValidationError({"birth_date": "Дата рождения должна быть между 1900-01-01 и сегодняшним днём"})


def get_patient(session: Session, patient_id: int) -> Patient:
    return _get(session, Patient, patient_id, "Пациент")


def get_patient_by_external(session: Session, external_id: str) -> Patient:
    row = _by(session, Patient.external_id, check_key(external_id, "external_id", 64))
    if row is None:
        raise NotFoundError(f"Пациент с кодом МИС «{external_id}» не найден")
    return row


def create_patient(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Patient:
    values = clean(PATIENT_FIELDS, data, partial=False, forms=forms)
    _check_patient(values, date.today())
    _unique(
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
    _check_patient(values, date.today())
    _unique(
        session,
        Patient.external_id,
        values.get("external_id"),
        patient.id,
        "external_id",
        "Пациент с таким кодом МИС уже есть",
    )
    if _assign(patient, values):
        session.flush()


def upsert_patient(
    session: Session, external_id: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Patient, bool]:
    """Create or update the patient with this МИС code; (patient, created).

    Absent fields keep their stored values (or take defaults on creation), so repeating the
    same request changes nothing.
    """
    key = check_key(external_id, "external_id", 64)
    _key_matches(data, "external_id", key)
    existing = _by(session, Patient.external_id, key)
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
    for token in _search_tokens(q):
        conds = [
            _name_filter((Patient.last_name, Patient.first_name, Patient.patronymic), token),
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
        query = query.where(or_(Patient.phone.endswith(key), Patient.phone_extra.endswith(key)))
    return _page(session, query, limit, offset)


# --------------------------------------------------------------------------- employees


def get_employee(session: Session, employee_id: int) -> Employee:
    return _get(session, Employee, employee_id, "Сотрудник")


def get_employee_by_external(session: Session, external_id: str) -> Employee:
    row = _by(session, Employee.external_id, check_key(external_id, "external_id", 64))
    if row is None:
        raise NotFoundError(f"Сотрудник с кодом МИС «{external_id}» не найден")
    return row


def create_employee(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Employee:
    values = clean(EMPLOYEE_FIELDS, data, partial=False, forms=forms)
    _unique(
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
    _unique(
        session,
        Employee.external_id,
        values.get("external_id"),
        employee.id,
        "external_id",
        "Сотрудник с таким кодом МИС уже есть",
    )
    if _assign(employee, values):
        session.flush()


def upsert_employee(
    session: Session, external_id: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Employee, bool]:
    """Create or update the employee with this МИС code; (employee, created)."""
    key = check_key(external_id, "external_id", 64)
    _key_matches(data, "external_id", key)
    existing = _by(session, Employee.external_id, key)
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
    for token in _search_tokens(q):
        query = query.where(
            or_(
                _name_filter((Employee.last_name, Employee.first_name, Employee.patronymic), token),
                _name_filter((Employee.specialty,), token),
                Employee.external_id == token,
            )
        )
    if role is not None:
        if role not in EMPLOYEE_ROLES:
            raise ValidationError({"role": "Допустимые значения: " + ", ".join(EMPLOYEE_ROLES)})
        query = query.where(Employee.role == role)
    if active is not None:
        query = query.where(Employee.is_active.is_(active))
    return _page(session, query, limit, offset)


# --------------------------------------------------------------------------- cabinets and services


def get_cabinet(session: Session, cabinet_id: int) -> Cabinet:
    return _get(session, Cabinet, cabinet_id, "Кабинет")


def create_cabinet(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Cabinet:
    values = clean(CABINET_FIELDS, data, partial=False, forms=forms)
    _unique(session, Cabinet.number, values["number"], None, "number", "Кабинет с таким номером уже есть")
    cabinet = Cabinet(**values)
    session.add(cabinet)
    session.flush()
    return cabinet


def upsert_cabinet(
    session: Session, number: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Cabinet, bool]:
    """Create or update the cabinet with this number; (cabinet, created)."""
    key = check_key(number, "number", 16)
    _key_matches(data, "number", key)
    existing = _by(session, Cabinet.number, key)
    if existing is None:
        return create_cabinet(session, {**data, "number": key}, forms=forms), True
    if _assign(existing, clean(CABINET_FIELDS, data, partial=True, forms=forms)):
        session.flush()
    return existing, False


def list_cabinets(session: Session, *, active: bool | None = None) -> list[Cabinet]:
    query = select(Cabinet).order_by(Cabinet.number, Cabinet.id)
    if active is not None:
        query = query.where(Cabinet.is_active.is_(active))
    return list(session.scalars(query))


def get_service(session: Session, service_id: int) -> Service:
    return _get(session, Service, service_id, "Услуга")


def create_service(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Service:
    values = clean(SERVICE_FIELDS, data, partial=False, forms=forms)
    _unique(session, Service.code, values["code"], None, "code", "Услуга с таким кодом уже есть")
    service = Service(**values)
    session.add(service)
    session.flush()
    return service


def upsert_service(
    session: Session, code: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Service, bool]:
    """Create or update the service with this code; (service, created)."""
    key = check_key(code, "code", 32)
    _key_matches(data, "code", key)
    existing = _by(session, Service.code, key)
    if existing is None:
        return create_service(session, {**data, "code": key}, forms=forms), True
    if _assign(existing, clean(SERVICE_FIELDS, data, partial=True, forms=forms)):
        session.flush()
    return existing, False


def list_services(session: Session, *, active: bool | None = None) -> list[Service]:
    query = select(Service).order_by(Service.code, Service.id)
    if active is not None:
        query = query.where(Service.is_active.is_(active))
    return list(session.scalars(query))


# --------------------------------------------------------------------------- appointments


def clinic_zone(session: Session) -> ZoneInfo:
    """The clinic's time zone from its settings (read only: a GET must not create the row)."""
    name = session.scalar(select(ClinicSettings.timezone).order_by(ClinicSettings.id).limit(1))
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a mistyped or directory name
        return ZoneInfo(DEFAULT_TIMEZONE)


def clinic_now(session: Session) -> datetime:
    """The clinic's wall-clock time, naive like Appointment.starts_at."""
    return datetime.now(clinic_zone(session)).replace(tzinfo=None, microsecond=0)


def get_appointment(session: Session, appointment_id: int) -> Appointment:
    return _get(session, Appointment, appointment_id, "Запись на приём")


def get_appointment_by_external(session: Session, external_id: str) -> Appointment:
    row = _by(session, Appointment.external_id, check_key(external_id, "external_id", 64))
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
        found = _by(session, alt_column, alt)
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
        # A moved appointment needs a fresh confirmation from the patient.
        appt.confirmation_status = appt.confirmation_source = ""
        appt.confirmed_at = None
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
    _unique(
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
    _unique(
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
    _key_matches(data, "external_id", key)
    existing = _by(session, Appointment.external_id, key)
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


def appointments_for_day(session: Session, day: date, *, doctor_id: int | None = None) -> list[Appointment]:
    """Every appointment starting on `day` (clinic time), cancelled ones included, by time."""
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
