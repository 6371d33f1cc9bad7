"""JSON Schemas of the OpenAPI document, translated from the field definitions that validate
requests (clinic.services.schedule) and shape responses (serialize.py), so neither can drift."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clinic.services.schedule import (
    APPOINTMENT_FIELDS,
    CABINET_FIELDS,
    CANCEL_FIELDS,
    DB_INT_MAX,
    EMPLOYEE_FIELDS,
    PATIENT_FIELDS,
    SERVICE_FIELDS,
    Field,
)
from webhooks.api.common import MAX_BODY_BYTES
from webhooks.api.serialize import APPOINTMENT_OUT, CABINET_OUT, EMPLOYEE_OUT, PATIENT_OUT, SERVICE_OUT

_DATETIME_IN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
_DATETIME_OUT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
_E164 = r"^\+[1-9]\d{6,14}$"

ERRORS = {
    400: ("BadRequest", "Malformed JSON body."),
    401: ("Unauthorized", "Missing, malformed, unknown or revoked bearer token."),
    404: ("NotFound", "No such record (or no such path)."),
    405: ("MethodNotAllowed", "The path exists but not with this method; see the Allow header."),
    409: (
        "Conflict",
        "A unique key is taken, the doctor is busy at that time, or the record's "
        "state forbids the change (a cancelled appointment, a visit already done).",
    ),
    413: ("PayloadTooLarge", f"The body is larger than {MAX_BODY_BYTES} bytes."),
    415: ("UnsupportedMediaType", "The body is not sent as Content-Type: application/json."),
    422: (
        "Unprocessable",
        "Validation failed: unknown fields, wrong types, bad values, missing "
        "references; `fields` names each problem.",
    ),
}


def field_schema(field: Field, *, output: bool) -> dict[str, Any]:
    kind = field.kind
    schema: dict[str, Any]
    if kind in ("str", "text"):
        schema = {"type": "string"}
        if field.max_len:
            schema["maxLength"] = field.max_len
        if field.required and not output:
            schema["minLength"] = 1
    elif kind in ("int", "id"):
        schema = {"type": "integer"}
        if kind == "id":
            schema.update(minimum=1, maximum=DB_INT_MAX)
        else:
            if field.min_value is not None:
                schema["minimum"] = field.min_value
            if field.max_value is not None:
                schema["maximum"] = field.max_value
    elif kind == "bool":
        schema = {"type": "boolean"}
    elif kind == "date":
        schema = {"type": "string", "format": "date"}
    elif kind == "datetime":
        schema = {
            "type": "string",
            "pattern": _DATETIME_OUT if output else _DATETIME_IN,
            "examples": ["2026-03-02T09:30:00" if output else "2026-03-02T09:30"],
        }
    elif kind == "timestamp":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "phone":
        schema = {"type": "string", "pattern": _E164} if output else {"type": "string", "maxLength": 32}
        schema["examples"] = ["+79161234567" if output else "8 (916) 123-45-67"]
    elif kind == "enum":
        schema = {"enum": list(field.choices)}
    elif kind == "money":
        out = {"type": "string", "pattern": r"^\d{1,8}\.\d{2}$"}
        schema = out if output else {"type": ["number", "string"], "minimum": 0, "maximum": 99999999.99}
    else:
        raise AssertionError(f"no JSON schema for field kind {kind!r}")
    if field.nullable:
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        else:
            schema["type"] = (
                [schema["type"], "null"] if isinstance(schema["type"], str) else [*schema["type"], "null"]
            )
    schema["description"] = field.label + (f". {field.doc}" if field.doc else "")
    return schema


def _object(fields: Sequence[Field], *, output: bool, required: bool) -> dict[str, Any]:
    props = {f.name: field_schema(f, output=output) for f in fields}
    names = [f.name for f in fields if output or (required and f.required)]
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if names:
        schema["required"] = names
    return schema


def _list(item: str, paged: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        "total": {"type": "integer", "minimum": 0, "description": "How many records match in all."},
    }
    if paged:
        props["limit"] = {"type": "integer"}
        props["offset"] = {"type": "integer"}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def component_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "fields"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong, in Russian."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Field or parameter name -> Russian message.",
                },
            },
        },
        "CancelRequest": _object(CANCEL_FIELDS, output=False, required=True),
    }
    entities = {
        "Patient": (PATIENT_FIELDS, PATIENT_OUT, True),
        "Employee": (EMPLOYEE_FIELDS, EMPLOYEE_OUT, True),
        "Cabinet": (CABINET_FIELDS, CABINET_OUT, False),
        "Service": (SERVICE_FIELDS, SERVICE_OUT, False),
        "Appointment": (APPOINTMENT_FIELDS, APPOINTMENT_OUT, False),
    }
    for name, (fields_in, fields_out, paged) in entities.items():
        schemas[name] = _object(fields_out, output=True, required=True)
        schemas[f"{name}Create"] = _object(fields_in, output=False, required=True)
        schemas[f"{name}Changes"] = _object(fields_in, output=False, required=False)
        schemas[f"{name}List"] = _list(name, paged)
    schemas["AppointmentCreate"]["description"] = (
        "patient_id or patient_external_id, and doctor_id or doctor_external_id, are required."
    )
    return schemas
