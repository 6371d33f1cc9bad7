"""The worker's live progress and the server-sent events stream of the control API.

POST /progress   {"kind": "mailing"|"export", "id", "sent", "failed", "left",
                  "started_at"?, "rate"?, "done"?, "user_ids"?: [..], "admins"?: bool}: the
                 worker's live progress, sent on as the event `progress` to those users
                 (no X-Actor-Id)
GET  /events     server-sent events: call, incoming, incoming_end, dtmf (?user=all for the
                 benchmark and tests; browsers take theirs from the events listener,
                 ari_app/events_gateway.py)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from ari_app.calls.notifier import Notifier
from ari_app.calls.store import CallStore
from ari_app.control_kit import actor, body, json_response
from ari_app.core.errors import BadRequest
from clinic import progress

log = logging.getLogger(__name__)

Hello = Callable[[int], Awaitable[list[dict[str, Any]]]]  # a user's calls when his stream opens


def add_routes(
    app: web.Application, notifier: Notifier, store: CallStore, hello: Hello, keepalive: float
) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        raw = request.query.get("user", "")
        user_id = None if raw == "all" else actor(request)
        sub = notifier.subscribe(user_id)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        try:
            await resp.write(_sse("hello", {"calls": [] if user_id is None else await hello(user_id)}))
            while True:
                try:
                    async with asyncio.timeout(keepalive):  # not wait_for: no task per event
                        msg = await sub.queue.get()
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                # everything queued by now goes in one write: a burst of calls costs one
                # socket write per wake-up, not one per event
                chunks = [_sse(msg["event"], msg["data"])]
                while not sub.queue.empty():
                    more = sub.queue.get_nowait()
                    chunks.append(_sse(more["event"], more["data"]))
                await resp.write(b"".join(chunks))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            notifier.unsubscribe(sub)
        return resp

    async def publish_progress(request: web.Request) -> web.Response:
        data = await body(request)
        event, user_ids, admins = _progress_event(data)
        if admins:
            try:
                user_ids |= set(await store.read(progress.admin_ids))
            except Exception as exc:  # noqa: BLE001 - the call log restarting: the named users still get it
                log.warning("progress: the admins not read: %s", exc)
        notifier.publish("progress", event, user_ids=user_ids, everyone=False)
        return json_response({"ok": True, "users": len(user_ids)}, 202)

    app.router.add_get("/events", events)
    app.router.add_post("/progress", publish_progress)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"Поле {key} должно быть неотрицательным целым числом")
    return value


def _progress_event(data: dict[str, Any]) -> tuple[dict[str, Any], set[int], bool]:
    """The `progress` event of a worker's report, its users and whether the admins get it;
    BadRequest (400) for anything malformed."""
    kind = data.get("kind")
    if kind not in progress.KINDS:
        raise BadRequest("Поле kind должно быть mailing или export")
    job_id = data.get("id")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id <= 0:
        raise BadRequest("Поле id должно быть положительным целым числом")
    sent, failed, left = _count(data, "sent"), _count(data, "failed"), _count(data, "left")
    started = data.get("started_at")
    if started is not None:
        try:
            datetime.fromisoformat(str(started))
        except ValueError:
            raise BadRequest("Поле started_at должно быть датой ISO 8601") from None
    rate = data.get("rate", 0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
        raise BadRequest("Поле rate должно быть неотрицательным числом")
    raw_users = data.get("user_ids", [])
    if not isinstance(raw_users, list) or any(
        isinstance(u, bool) or not isinstance(u, int) or u <= 0 for u in raw_users
    ):
        raise BadRequest("Поле user_ids должно быть списком номеров пользователей")
    admins = data.get("admins", False)
    if not isinstance(admins, bool):
        raise BadRequest("Поле admins должно быть true или false")
    if not raw_users and not admins:
        raise BadRequest("Не указано, кому показывать ход работы")
    event = {
        "kind": kind,
        "id": job_id,
        "sent": sent,
        "failed": failed,
        "left": left,
        "started_at": started,
        "rate": float(rate),
        "done": bool(data.get("done", False)),
    }
    return event, set(raw_users), admins


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
