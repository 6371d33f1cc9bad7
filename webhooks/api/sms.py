"""/sms: one SMS for the МИС — by appointment (its template, the reminder is sent at most
once per visit time) or phone + text — and its state with the delivery status.

The ledger row is written before the request to sms.ru; a repeated POST with the same
`idempotency_key` (or `Idempotency-Key` header) returns the first message (200) instead of
sending another. Gateway failures are not HTTP errors: the message comes back with its
`state` (failed / unknown) and the gateway's answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, g, request, url_for

from clinic.models import SmsMessage
from clinic.services import ValidationError, parse_int
from clinic.services.schedule import NotFoundError
from clinic.sms import sending
from webhooks.api import bp
from webhooks.api.common import json_body, json_response, unit_of_work

FIELDS = ("appointment_id", "template_id", "patient_id", "phone", "text", "idempotency_key")


def dump_message(row: SmsMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "state_title": row.state_title,
        "note": row.note,
        "phone": "+" + row.phone,
        "text": row.text,
        "parts": row.parts,
        "patient_id": row.patient_id,
        "appointment_id": row.appointment_id,
        "mailing_id": row.mailing_id,
        "sms_id": row.sms_id,
        "gateway_code": row.gateway_code,
        "delivery_code": row.delivery_code,
        "delivery_text": row.delivery_text,
        "delivered": row.delivery_code in (103, 110),
        "delivery_final": row.delivery_final,
        "cost": f"{row.cost:.2f}" if row.cost is not None else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def _id(data: dict[str, Any], name: str, errors: dict[str, str]) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    number = parse_int(value) if not isinstance(value, bool) else None
    if number is None or not 1 <= number <= 2**31 - 1:
        errors[name] = "Ожидается целое число больше нуля"
        return None
    return number


def _str(data: dict[str, Any], name: str, errors: dict[str, str], max_len: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors[name] = "Ожидается строка"
        return None
    if len(value) > max_len:
        errors[name] = f"Не длиннее {max_len} символов"
        return None
    return value


@bp.post("/sms")
def send_sms():  # type: ignore[no-untyped-def]
    data = json_body()
    errors = {key[:64]: "Неизвестное поле" for key in data if key not in FIELDS}
    appointment_id = _id(data, "appointment_id", errors)
    template_id = _id(data, "template_id", errors)
    patient_id = _id(data, "patient_id", errors)
    phone = _str(data, "phone", errors, 32)
    text = _str(data, "text", errors, 2000)
    key = (
        _str(data, "idempotency_key", errors, 100) or request.headers.get("Idempotency-Key", "")[:100] or None
    )
    if not errors and appointment_id is None and text is None:
        errors["text"] = "Укажите appointment_id (текст по шаблону) или phone и text"
    if not errors and text is None and appointment_id is None and template_id is not None:
        errors["appointment_id"] = "Шаблон заполняется по записи на приём: укажите appointment_id"
    if errors:
        raise ValidationError(errors)
    reminder = appointment_id is not None and text is None
    factory = current_app.extensions["mis_sessions"]
    token = getattr(g, "api_token_id", 0)
    msg_id, created = sending.send_single(
        factory,
        current_app.config["MIS"],
        phone=phone,
        text=text,
        key=f"api:{token}:{key}" if key else f"api:{uuid.uuid4().hex}",
        patient_id=patient_id,
        appointment_id=appointment_id,
        template_id=template_id,
        source="api",
        reminder=reminder,
    )
    with unit_of_work() as s:
        row = s.get(SmsMessage, msg_id)
        assert row is not None
        body = dump_message(row)
    return json_response(
        body, 201 if created else 200, {"Location": url_for("api_v1.get_sms", message_id=msg_id)}
    )


@bp.get("/sms/<int:message_id>")
def get_sms(message_id: int):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        row = s.get(SmsMessage, message_id) if message_id <= 2**31 - 1 else None
        if row is None:
            raise NotFoundError("Сообщение не найдено")
        body = dump_message(row)
    return json_response(body)


SCHEMAS: dict[str, Any] = {
    "SmsRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "Either appointment_id (the text is the template's — template_id or the default "
        "patient template — and the reminder for this visit time is sent at most once), or phone "
        "and text (patient_id and appointment_id optional, for the history and the ttl).",
        "properties": {
            "appointment_id": {"type": "integer", "minimum": 1, "maximum": 2147483647},
            "template_id": {"type": "integer", "minimum": 1, "maximum": 2147483647},
            "patient_id": {"type": "integer", "minimum": 1, "maximum": 2147483647},
            "phone": {"type": "string", "maxLength": 32, "examples": ["8 (916) 123-45-67"]},
            "text": {"type": "string", "maxLength": 2000},
            "idempotency_key": {
                "type": "string",
                "maxLength": 100,
                "description": "Repeating a request with the same key returns the first message (200).",
            },
        },
    },
    "SmsMessage": {
        "type": "object",
        "required": ["id", "state", "phone", "text", "parts"],
        "properties": {
            "id": {"type": "integer"},
            "state": {"enum": ["queued", "sending", "sent", "failed", "unknown", "skipped"]},
            "state_title": {"type": "string"},
            "note": {
                "type": "string",
                "description": "Why skipped, deferred (quiet hours), failed or unknown.",
            },
            "phone": {"type": "string"},
            "text": {"type": "string"},
            "parts": {"type": "integer"},
            "patient_id": {"type": ["integer", "null"]},
            "appointment_id": {"type": ["integer", "null"]},
            "mailing_id": {"type": ["integer", "null"]},
            "sms_id": {"type": ["string", "null"]},
            "gateway_code": {"type": ["integer", "null"]},
            "delivery_code": {
                "type": ["integer", "null"],
                "description": "sms.ru delivery code (100..108, 110, 150)",
            },
            "delivery_text": {"type": "string"},
            "delivered": {"type": "boolean"},
            "delivery_final": {"type": "boolean"},
            "cost": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "sent_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}
