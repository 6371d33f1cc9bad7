"""Domain services: validation and changes shared by the web UI, the REST API and the worker.

Services take a SQLAlchemy Session and plain values (form fields or JSON alike), validate
everything before touching a row, and report problems as `ValidationError` with Russian
messages per field, so callers can re-render a form or return a 422 without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_INT = re.compile(r"[+-]?[0-9]{1,12}")


class ValidationError(ValueError):
    """User input that cannot be saved. `errors` maps a field name to a Russian message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(self.errors.values()) or "Некорректные данные")


def as_text(value: object) -> str:
    """A form or JSON value as stripped text; None becomes ""."""
    if value is None:
        return ""
    return str(value).strip()


_TRUE = {"1", "true", "on", "yes", "y", "да"}
_FALSE = {"", "0", "false", "off", "no", "n", "нет"}


def parse_bool(value: object) -> bool | None:
    """True/False from a checkbox ("on"), JSON (true) or text ("да"); None if unrecognised."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = as_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_int(value: object) -> int | None:
    """An integer from form text or JSON; None for anything else (letters, 1.5, true)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = as_text(value)
    if not _INT.fullmatch(text):
        return None
    return int(text)


__all__ = ["ValidationError", "as_text", "parse_bool", "parse_int"]
