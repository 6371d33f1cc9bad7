"""Errors and the small query helpers the schedule services share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from clinic.models import (
    Appointment,
    Cabinet,
    Employee,
    Patient,
    Service,
)
from clinic.services import ValidationError
from clinic.services.schedule.fields import DB_INT_MAX, check_key


class ConflictError(ValidationError):
    """Valid input that clashes with stored data: a taken key, a busy doctor, a closed record."""


class NotFoundError(LookupError):
    """The record asked for does not exist; the message is Russian, for the user."""


M = TypeVar("M", Patient, Employee, Cabinet, Service, Appointment)


@dataclass(frozen=True)
class Page:
    """One page of a list plus the total count matching the filter."""

    items: list[Any]
    total: int
    limit: int
    offset: int


def get_row(session: Session, model: type[M], record_id: int, what: str) -> M:
    # Ids past the database integer range cannot exist; asking the driver would raise instead.
    row = session.get(model, record_id) if 1 <= record_id <= DB_INT_MAX else None
    if row is None:
        raise NotFoundError(f"{what} №{record_id} не найден")
    return row


def find_by(session: Session, column: Any, value: str) -> Any:
    return session.scalars(select(column.class_).where(column == value)).first()


def paginate(session: Session, query: Select[Any], limit: int, offset: int) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items=items, total=total, limit=limit, offset=offset)


def ensure_unique(
    session: Session, column: Any, value: Any, own_id: int | None, field: str, message: str
) -> None:
    """ConflictError when another row already holds `value` in a unique column."""
    if value is None:
        return
    other = session.scalars(select(column.class_.id).where(column == value)).first()
    if other is not None and other != own_id:
        raise ConflictError({field: f"{message} (№{other})"})


def assign_changed(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; True if anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def key_matches(data: Mapping[str, Any], field: str, key: str) -> None:
    if field in data and data[field] != key:
        raise ValidationError({field: "Не совпадает со значением в адресе запроса"})


def name_filter(columns: Iterable[Any], token: str) -> Any:
    """A case-insensitive prefix match of `token` against any of `columns`.

    SQLite's LIKE and lower() fold ASCII only, so Cyrillic case is handled by also trying the
    spellings people store names in (иванов / ИВАНОВ / Иванов); PostgreSQL's ILIKE folds them itself.
    """
    escaped = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    variants = {escaped, escaped.lower(), escaped.upper(), escaped.capitalize()}
    return or_(*(col.ilike(v + "%", escape="\\") for col in columns for v in variants))


def search_tokens(q: str) -> list[str]:
    text = check_key(q, "q", 100) if q.strip() else ""
    return text.split()[:5]
