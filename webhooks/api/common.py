"""Request and response plumbing shared by the /api/v1 views: JSON in and out, query
parameters, the per-request transaction and the API's own error type."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request
from sqlalchemy.orm import Session

from clinic.db import transaction
from clinic.inputs import BadJson, parse_json
from clinic.services.schedule import Field, clean

MAX_BODY_BYTES = 1024 * 1024  # a day's schedule is far smaller; more is a mistake or an attack
JSON_TYPES = ("application/json",)


class ApiError(Exception):
    """An HTTP error answered as {"error": message, "fields": {...}}."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """JSON with Russian left readable (Flask's jsonify escapes it to \\uXXXX)."""
    try:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed from the input: escape rather than fail
        body = json.dumps(payload).encode("ascii")
    return Response(body, status=status, headers=dict(headers or {}), mimetype="application/json")


def error_response(
    status: int,
    message: str,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return json_response({"error": message, "fields": dict(fields or {})}, status, headers)


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 415 / 400 / 422."""
    if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise ApiError(415, "Ожидается тело в формате JSON: заголовок Content-Type: application/json")
    try:
        # utf-8-sig inside: Windows-based МИС often prefix a byte-order mark.
        data = parse_json(request.get_data(cache=True), surrogates_ok=True)  # 422 names the field
    except BadJson as exc:
        raise ApiError(400, str(exc)) from None
    if not isinstance(data, dict):
        raise ApiError(422, 'Тело запроса должно быть объектом JSON: {"поле": значение}')
    return data


@dataclass(frozen=True)
class Param:
    """A query parameter: checked like a form field, documented in the OpenAPI document."""

    field: Field
    default: Any = None

    @property
    def name(self) -> str:
        return self.field.name


def query_params(*params: Param) -> dict[str, Any]:
    """The clean query parameters (defaults filled in); unknown or repeated ones are refused."""
    known = {p.name: p for p in params}
    errors: dict[str, str] = {}
    for key in request.args:
        if key not in known:
            errors[key[:64]] = "Неизвестный параметр"
        elif len(request.args.getlist(key)) > 1:
            errors[key] = "Параметр указан несколько раз"
    if errors:
        raise ApiError(422, "Некорректные параметры запроса", errors)
    given = {k: v for k, v in request.args.items()}
    values = clean([p.field for p in params], given, partial=False, forms=True)
    return {p.name: values[p.name] if values.get(p.name) is not None else p.default for p in params}


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction per request: everything commits together or nothing is written."""
    with transaction(current_app.extensions["mis_sessions"]) as session:
        yield session
