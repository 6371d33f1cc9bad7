"""Cabinets and services: the reference lists appointments point at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import (
    Cabinet,
    Service,
)
from clinic.services.schedule.common import (
    assign_changed,
    ensure_unique,
    find_by,
    get_row,
    key_matches,
)
from clinic.services.schedule.fields import MAX_DURATION_MIN, Field, check_key, clean

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


# --------------------------------------------------------------------------- cabinets and services


def get_cabinet(session: Session, cabinet_id: int) -> Cabinet:
    return get_row(session, Cabinet, cabinet_id, "Кабинет")


def create_cabinet(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Cabinet:
    values = clean(CABINET_FIELDS, data, partial=False, forms=forms)
    ensure_unique(
        session, Cabinet.number, values["number"], None, "number", "Кабинет с таким номером уже есть"
    )
    cabinet = Cabinet(**values)
    session.add(cabinet)
    session.flush()
    return cabinet


def upsert_cabinet(
    session: Session, number: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Cabinet, bool]:
    """Create or update the cabinet with this number; (cabinet, created)."""
    key = check_key(number, "number", 16)
    key_matches(data, "number", key)
    existing = find_by(session, Cabinet.number, key)
    if existing is None:
        return create_cabinet(session, {**data, "number": key}, forms=forms), True
    if assign_changed(existing, clean(CABINET_FIELDS, data, partial=True, forms=forms)):
        session.flush()
    return existing, False


def list_cabinets(session: Session, *, active: bool | None = None) -> list[Cabinet]:
    query = select(Cabinet).order_by(Cabinet.number, Cabinet.id)
    if active is not None:
        query = query.where(Cabinet.is_active.is_(active))
    return list(session.scalars(query))


def get_service(session: Session, service_id: int) -> Service:
    return get_row(session, Service, service_id, "Услуга")


def create_service(session: Session, data: Mapping[str, Any], *, forms: bool = False) -> Service:
    values = clean(SERVICE_FIELDS, data, partial=False, forms=forms)
    ensure_unique(session, Service.code, values["code"], None, "code", "Услуга с таким кодом уже есть")
    service = Service(**values)
    session.add(service)
    session.flush()
    return service


def upsert_service(
    session: Session, code: str, data: Mapping[str, Any], *, forms: bool = False
) -> tuple[Service, bool]:
    """Create or update the service with this code; (service, created)."""
    key = check_key(code, "code", 32)
    key_matches(data, "code", key)
    existing = find_by(session, Service.code, key)
    if existing is None:
        return create_service(session, {**data, "code": key}, forms=forms), True
    if assign_changed(existing, clean(SERVICE_FIELDS, data, partial=True, forms=forms)):
        session.flush()
    return existing, False


def list_services(session: Session, *, active: bool | None = None) -> list[Service]:
    query = select(Service).order_by(Service.code, Service.id)
    if active is not None:
        query = query.where(Service.is_active.is_(active))
    return list(session.scalars(query))
