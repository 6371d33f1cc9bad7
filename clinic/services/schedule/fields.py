"""How a raw value (JSON, or HTML form text) becomes a clean one: the `Field` definitions every
entity declares, `clean()` that applies them, and the shared limits."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from clinic.phones import PhoneError, normalize
from clinic.services import ValidationError, parse_bool, parse_int

DB_INT_MAX = 2_147_483_647  # PostgreSQL `integer`; larger ids would fail in the driver, not here
MAX_DURATION_MIN = 720  # one appointment is at most a 12-hour shift; bounds the overlap query

_LINE_BAD = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # multi-line text keeps \t \n \r
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_MONEY = re.compile(r"\d{1,8}(\.\d{1,2})?")


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


EXTERNAL_ID = Field(
    "external_id",
    "str",
    "Код в МИС",
    nullable=True,
    max_len=64,
    doc="The record's id in the МИС; unique; the key of the idempotent PUT .../by-external/{external_id}.",
)
