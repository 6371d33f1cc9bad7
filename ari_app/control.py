"""The loopback control API the web side uses (the thin HTTP layer over CallService).

Every request carries the shared token (`X-Control-Token`) and the acting user
(`X-Actor-Id`); the service checks what that user may do. Errors are JSON
`{"error": "<Russian message>"}` with 4xx (503 when Asterisk is unreachable).

    POST /calls                         {"target": "89161234567" | "102", "patient_id"?, "appointment_id"?,
                                         "callback_of"?}
    GET  /calls                         the actor's active calls (admins: all)
    GET  /calls/{uid}
    POST /calls/{uid}/hold | /unhold | /record/start | /record/stop | /hangup
    POST /calls/{uid}/conference        {"target": ...}
    POST /calls/{uid}/transfer          {"target": ..., "mode": "blind" | "attended"}
    POST /calls/{uid}/transfer/complete | /transfer/cancel
    POST /calls/{uid}/dtmf              {"digits": "12#"}
    GET  /phone-calls                   calls on the actor's own SIP phone that can be taken over
    POST /phone-calls/{channel_id}/adopt
    GET  /recordings/{name}             the stored WAV (from Asterisk)
    POST /progress                      {"kind": "mailing"|"export", "id", "sent", "failed", "left",
                                         "started_at"?, "rate"?, "done"?, "user_ids"?: [..],
                                         "admins"?: bool}: the worker's live progress, sent on
                                        as the event `progress` to those users (no X-Actor-Id)
    GET  /events                        server-sent events: call, incoming, incoming_end, dtmf
                                        (?user=all for the benchmark; browsers take theirs from
                                        the events listener, ari_app/events_gateway.py)
    GET  /health
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from ari_app.calls.errors import BadRequest, CallError, Forbidden
from ari_app.calls.notifier import Notifier
from ari_app.calls.service import CallService
from ari_app.calls.store import StoreError
from ari_app.client import AriClient, AriError, AriNotFound
from clinic import progress
from clinic.inputs import BadJson, parse_id, parse_json_object

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


# A command is a few hundred bytes of JSON: anything larger is refused with 413 unread.
MAX_BODY = 64 * 1024


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def make_app(
    service: CallService, notifier: Notifier, ari: AriClient, token: str, keepalive: float = 15.0
) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/health":
            given = request.headers.get("X-Control-Token", "")
            if not token or not hmac.compare_digest(given, token):
                return _error("Нет доступа к управлению звонками", 401)
        try:
            return await handler(request)
        except CallError as exc:
            return _error(exc.message, exc.status)
        except StoreError as exc:
            log.warning("call log unavailable in %s %s: %s", request.method, request.path, exc)
            return _error("Журнал звонков временно недоступен: повторите через несколько секунд", 503)
        except AriError as exc:
            log.warning("ARI error in %s %s: %s", request.method, request.path, exc)
            return _error(
                "АТС не выполнила команду: звонок мог завершиться", 409 if exc.status == 404 else 502
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

    def opt_int(data: dict[str, Any], key: str) -> int | None:
        value = data.get(key)
        if value in (None, ""):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise BadRequest(f"Поле {key} должно быть числом") from None

    async def health(_request: web.Request) -> web.Response:
        return _json(
            {
                "ok": True,
                "ari_connected": ari.connected.is_set(),
                "call_log_ready": service.store.ready,
                "call_log_unsaved": service.store.unsaved,
                "calls": len(service.calls),
                "resyncs": service.resyncs,
                "subscribers": notifier.count,
            }
        )

    async def create(request: web.Request) -> web.Response:
        data = await body(request)
        target = str(data.get("target") or data.get("number") or data.get("extension") or "")
        snap = await service.dial(
            actor(request),
            target,
            patient_id=opt_int(data, "patient_id"),
            appointment_id=opt_int(data, "appointment_id"),
            callback_of=str(data["callback_of"]) if data.get("callback_of") else None,
        )
        return _json(snap, 201)

    async def listing(request: web.Request) -> web.Response:
        who = await service._actor(actor(request))
        return _json({"calls": service.list_for(who)})

    async def one(request: web.Request) -> web.Response:
        return _json(await service.get(actor(request), request.match_info["uid"]))

    def command(name: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            uid, who = request.match_info["uid"], actor(request)
            data = await body(request)
            if name == "conference":
                snap = await service.conference(who, uid, str(data.get("target") or ""))
            elif name == "transfer":
                snap = await service.transfer(
                    who, uid, str(data.get("target") or ""), str(data.get("mode") or "blind")
                )
            elif name == "dtmf":
                snap = await service.dtmf(who, uid, str(data.get("digits") or ""))
            else:
                snap = await getattr(service, name)(who, uid)
            return _json(snap)

        return handler

    async def phone_calls(request: web.Request) -> web.Response:
        return _json({"calls": await service.phone_calls(actor(request))})

    async def adopt(request: web.Request) -> web.Response:
        return _json(await service.adopt(actor(request), request.match_info["channel_id"]), 201)

    async def recording(request: web.Request) -> web.Response:
        actor(request)  # the web side checks who may listen; we only serve the file
        name = request.match_info["name"]
        if not name.replace("-", "").isalnum():
            raise BadRequest("Некорректное имя записи")
        try:
            data = await ari.recording_file(name)
        except AriNotFound:
            return _error("Запись не найдена", 404)
        return web.Response(body=data, content_type="audio/wav")

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
            hello = {"calls": [] if user_id is None else service.list_for(await service._actor(user_id))}
            await resp.write(_sse("hello", hello))
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
                user_ids |= set(await service.store.read(progress.admin_ids))
            except Exception as exc:  # noqa: BLE001 - the call log restarting: the named users still get it
                log.warning("progress: the admins not read: %s", exc)
        notifier.publish("progress", event, user_ids=user_ids, everyone=False)
        return _json({"ok": True, "users": len(user_ids)}, 202)

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app.router.add_get("/health", health)
    app.router.add_post("/calls", create)
    app.router.add_get("/calls", listing)
    app.router.add_get("/calls/{uid}", one)
    for path, name in (
        ("hold", "hold"),
        ("unhold", "unhold"),
        ("record/start", "record_start"),
        ("record/stop", "record_stop"),
        ("hangup", "hangup"),
        ("conference", "conference"),
        ("transfer", "transfer"),
        ("transfer/complete", "transfer_complete"),
        ("transfer/cancel", "transfer_cancel"),
        ("dtmf", "dtmf"),
    ):
        app.router.add_post(f"/calls/{{uid}}/{path}", command(name))
    app.router.add_get("/phone-calls", phone_calls)
    app.router.add_post("/phone-calls/{channel_id}/adopt", adopt)
    app.router.add_get("/recordings/{name}", recording)
    app.router.add_get("/events", events)
    app.router.add_post("/progress", publish_progress)
    return app


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
