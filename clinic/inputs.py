"""Parsing what arrives from outside: row ids and JSON bodies. One place, used by every
entry point, so "bad input" is always a clear refusal and never a 500.

- `'²'.isdigit()` is True but `int('²')` raises: ids are ASCII digits only, within the
  database's integer range.
- `json.loads` recurses per nesting level (RecursionError on deep input) and accepts lone
  surrogates (`"\\ud800"`) that later fail to encode for the database or the log: both are
  refused here, before any handler sees the data. The depth is measured by one linear scan,
  never by a regex over the raw body.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_ID = 2**31 - 1  # PostgreSQL's integer
MAX_DEPTH = 32
_ASCII_ID = re.compile(r"[0-9]{1,10}")


class BadJson(ValueError):
    """A body that is not an acceptable JSON object; the message is Russian."""


def parse_id(value: object) -> int | None:
    """A positive row id from a path, query, form or JSON value; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= MAX_ID else None
    text = str(value).strip() if isinstance(value, str) else ""
    if not _ASCII_ID.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def nesting_depth(text: str) -> int:
    """The deepest [ / { nesting outside strings, in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} не является JSON")  # Python accepts NaN/Infinity; RFC 8259 does not


def _has_lone_surrogate(data: Any) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH, surrogates_ok: bool = False) -> Any:
    """Any JSON value from a body (UTF-8, a BOM allowed); BadJson with a Russian reason.
    `surrogates_ok`: the caller checks every string itself and names the field (the МИС API)."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadJson("Тело запроса не в UTF-8") from None
    if nesting_depth(text) > max_depth:
        raise BadJson(f"Некорректный JSON: вложенность глубже {max_depth} уровней")
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise BadJson(f"Некорректный JSON: {str(exc)[:200]}") from None
    if not surrogates_ok and _has_lone_surrogate(data):
        raise BadJson("Некорректный JSON: строка с одиночным суррогатом (\\ud800–\\udfff)")
    return data


def parse_json_object(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    data = parse_json(raw, max_depth=max_depth)
    if not isinstance(data, dict):
        raise BadJson("Тело запроса должно быть JSON-объектом")
    return data
