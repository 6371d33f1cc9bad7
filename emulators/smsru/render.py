"""Replies shaped like the real service's (smsru.md §1): PHP's pretty JSON with ``\\/``,
money as JSON numbers, HTTP 200 and the real headers whatever the API outcome."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import Response

from emulators.smsru import codes

JSON_TYPE = "application/json; charset=utf-8"
HEADERS = {"Sms-Api": "CERN/3.0"}


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def php_json(payload: Any) -> str:
    text = json.dumps(payload, indent=4, ensure_ascii=False, default=_default)
    # "/" only ever occurs inside JSON strings, so this escapes exactly what PHP escapes.
    return text.replace("/", "\\/")


def error(code: int, text: str | None = None) -> dict[str, Any]:
    return {"status": "ERROR", "status_code": code, "status_text": text or codes.text_for(code)}


def ok(**fields: Any) -> dict[str, Any]:
    return {"status": "OK", "status_code": codes.OK, **fields}


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(php_json(payload), status=status, content_type=JSON_TYPE, headers=HEADERS)


def plain_text(method: str, payload: dict[str, Any], order: list[str] | None = None) -> str:
    """Legacy reply without json=1 (§2.4): the request code, then method-specific lines.

    Only sms/send (one line per recipient, then ``balance=``) and my/balance carry more
    than the code; the client always asks for JSON, this is for completeness.
    """
    lines = [str(payload.get("status_code"))]
    if payload.get("status") == "OK" and method == "sms/send":
        entries = payload.get("sms", {})
        for key in order or list(entries):
            entry = entries.get(key, {})
            sent = entry.get("status") == "OK"
            lines.append(str(entry.get("sms_id") if sent else entry.get("status_code")))
        lines.append(f"balance={payload.get('balance')}")
    elif payload.get("status") == "OK" and method == "my/balance":
        lines.append(str(payload.get("balance")))
    return "\n".join(lines)
