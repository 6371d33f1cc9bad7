"""What the thin HTTP modules of the features share: the acting user of a request, its JSON
body, typed fields, and the JSON answer."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ari_app.core.errors import BadRequest, Forbidden
from clinic.inputs import BadJson, parse_id, parse_json_object

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# a command on one call: (acting user, call uid, request body) → the call's snapshot
CommandHandler = Callable[[int, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


def actor(request: web.Request) -> int:
    actor_id = parse_id(request.headers.get("X-Actor-Id", ""))
    if actor_id is None:
        raise Forbidden("Не указан пользователь")
    return actor_id


async def body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        return parse_json_object(await request.read())
    except BadJson as exc:
        raise BadRequest(str(exc)) from None


def text(data: dict[str, Any], key: str) -> str:
    return str(data.get(key) or "")


def opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Поле {key} должно быть числом") from None
