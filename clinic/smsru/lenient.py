"""Lenient readers for sms.ru's loosely typed JSON (smsru.md §1 "Number types are loose").

The real service returns the same field as a number, a numeric string or ``null`` from one
reply to the next (``total_limit: "10"``, ``used_today: null``), serialises an empty PHP
array as ``[]`` where a map is expected, and drops keys it has nothing for. These helpers
turn any of that into a plain Python value or ``None``, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return int(value) if value == int(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            dec = as_decimal(text)
            return int(dec) if dec is not None and dec == int(dec) else None
    return None


def as_decimal(value: Any) -> Decimal | None:
    """Money: kept as Decimal so ledger sums do not drift. Accepts "4122.56" and "4122,56"."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            dec = Decimal(value.strip().replace(",", "."))
        except InvalidOperation:
            return None
        return dec if dec.is_finite() else None
    return None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def as_mapping(value: Any) -> dict[str, Any]:
    """A JSON object as a dict; ``[]``/``null``/anything else (PHP's empty array) as {}."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return {}


def as_str_list(value: Any) -> list[str]:
    """A list of strings from a list, a PHP-style ``{"0": ...}`` object or a bare string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return [s for s in (as_text(item) for item in items) if s]


def status_is_ok(entry: Mapping[str, Any], ok_code: int | None = 100) -> bool | None:
    """Read an ``"status": "OK"|"ERROR"`` flag; when absent, fall back to the code.

    Returns None when neither says anything.
    """
    flag = as_text(entry.get("status"))
    if flag is not None and flag.strip():
        return flag.strip().upper() == "OK"
    code = as_int(entry.get("status_code"))
    if code is None:
        return None
    return code == ok_code if ok_code is not None else code >= 0
