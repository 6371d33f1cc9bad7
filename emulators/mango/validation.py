"""Parameter checks for the outbound-campaign methods, with Mango's result codes.

3103 for a missing required parameter, 3104 for a wrong type or format, 3100 for a value
Mango cannot use (an unknown custom-field id: names instead of ids is the classic mistake).
Limits are from API §4.6.7-4.6.8. The emulator is deliberately strict: integers must be JSON
numbers, so a client that sends "56919" as a string is caught here rather than in production.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

BAD_PARAMS = 3100
MISSING_PARAM = 3103
BAD_FORMAT = 3104


class ApiError(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


def require_int(obj: Mapping[str, Any], key: str) -> int:
    if key not in obj or obj[key] is None:
        raise ApiError(MISSING_PARAM, f"{key} is required")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(BAD_FORMAT, f"{key} must be a number")
    return value


def _optional_str(obj: Mapping[str, Any], key: str, limit: int) -> None:
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise ApiError(BAD_FORMAT, f"{key} must be a string")
    if len(value) > limit:
        raise ApiError(BAD_FORMAT, f"{key} is longer than {limit} characters")


def _number(obj: Mapping[str, Any], where: str) -> str:
    value = obj.get("number")
    if value is None or value == "":
        raise ApiError(MISSING_PARAM, f"{where}number is required")
    if not isinstance(value, str):
        raise ApiError(BAD_FORMAT, f"{where}number must be a string")
    if len(value) > 64:
        raise ApiError(BAD_FORMAT, f"{where}number is longer than 64 characters")
    return value


def _priority(obj: Mapping[str, Any], key: str, low: int, high: int) -> None:
    value = obj.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(BAD_FORMAT, f"{key} must be {low}..{high}")


def _utc_datetime(obj: Mapping[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is None:
        return
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        raise ApiError(BAD_FORMAT, f'{key} must be "YYYY-MM-DD HH:MM:SS" (UTC)') from None


def validate_task(obj: Any, known_field_ids: Collection[int]) -> dict[str, Any]:
    """Check one task (the body of task/add or an item of tasks/push) and return it."""
    if not isinstance(obj, dict):
        raise ApiError(BAD_FORMAT, "a task must be an object")
    _number(obj, "")
    for key in ("name", "organization", "position"):
        _optional_str(obj, key, 255)
    _optional_str(obj, "comment", 1024)
    _priority(obj, "priority", 1, 1000)
    _utc_datetime(obj, "due_date")
    _utc_datetime(obj, "blocked_until")
    custom = obj.get("custom_fields")
    if custom is not None:
        if not isinstance(custom, dict):
            raise ApiError(BAD_FORMAT, "custom_fields must be an object keyed by field id")
        for key, value in custom.items():
            if not key.isdigit() or int(key) not in known_field_ids:
                raise ApiError(BAD_PARAMS, f"unknown custom field id {key!r}")
            if isinstance(value, dict | list):
                raise ApiError(BAD_FORMAT, f"custom field {key} must be a plain value")
    subtasks = obj.get("subtasks")
    if subtasks is not None:
        if not isinstance(subtasks, list):
            raise ApiError(BAD_FORMAT, "subtasks must be an array")
        for sub in subtasks:
            if not isinstance(sub, dict):
                raise ApiError(BAD_FORMAT, "a subtask must be an object")
            _number(sub, "subtask ")
            if "order" not in sub or "type" not in sub:
                raise ApiError(MISSING_PARAM, "subtask order and type are required")
            order, kind = sub["order"], sub["type"]
            if isinstance(order, bool) or not isinstance(order, int) or order < 0:
                raise ApiError(BAD_FORMAT, "subtask order counts from 0")
            if kind != 0 or isinstance(kind, bool):
                raise ApiError(BAD_FORMAT, "subtask type must be 0")
            _priority(sub, "priority", 1, 999)
    return obj


def number_key(number: str) -> str:
    """What makes two numbers "the same phone" for the 5109 check: digits only for phone
    numbers (so +79001234567 and 79001234567 collide), SIP URIs compared as written."""
    if number.lower().startswith("sip:"):
        return number.lower()
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits or number
