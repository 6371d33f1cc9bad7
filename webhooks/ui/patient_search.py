"""Finding patients by a fragment of the name or the phone, as a registrar types it.

Names: every word must match the surname, the name or the patronymic. Phones are matched by
digits, so "8 (916) 123-45", "916-123" and "+7916123" all find "+79161234567". Case variants
are generated in Python because SQLite's lower() does not fold Cyrillic.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from clinic.models import Patient

MIN_QUERY = 2
_PHONE_ONLY = re.compile(r"[\d\s()+\-.]+")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _digits_match(digits: str) -> ColumnElement[bool]:
    options = [digits]
    # Russians dial a leading 8 for +7: "8916..." is stored as "+7916...".
    if digits.startswith("8") and len(digits) >= 2:
        options.append("7" + digits[1:])
    clauses = [
        column.like(_like(option), escape="\\")
        for option in options
        for column in (Patient.phone, Patient.phone_extra)
    ]
    return or_(*clauses)


def _word_match(word: str) -> ColumnElement[bool]:
    variants = {word, word.lower(), word.capitalize(), word.upper()}
    return or_(
        *(
            column.ilike(_like(variant), escape="\\")
            for variant in variants
            for column in (Patient.last_name, Patient.first_name, Patient.patronymic)
        )
    )


def search_patients(session: Session, query: str, limit: int = 50) -> list[Patient]:
    query = (query or "").strip()
    if len(query) < MIN_QUERY:
        return []
    conditions: list[ColumnElement[bool]] = []
    if _PHONE_ONLY.fullmatch(query):
        digits = re.sub(r"\D", "", query)
        if len(digits) < MIN_QUERY:
            return []
        conditions.append(_digits_match(digits))
    else:
        for word in query.split()[:5]:
            digits = re.sub(r"\D", "", word)
            conditions.append(
                _digits_match(digits) if digits and _PHONE_ONLY.fullmatch(word) else _word_match(word)
            )
    statement = (
        select(Patient)
        .where(and_(*conditions))
        .order_by(Patient.last_name, Patient.first_name, Patient.patronymic, Patient.id)
        .limit(limit)
    )
    return list(session.scalars(statement))
