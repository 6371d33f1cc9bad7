"""The loopback control API the web side uses: thin HTTP over the features (each feature's
http.py), with the commands on a call routed from the one contract, clinic/call_control.py.

Every request carries the shared token (`X-Control-Token`) and, for calls, the acting user
(`X-Actor-Id`); the services check what that user may do. Errors are JSON
`{"error": "<Russian message>", "error_id": ...}` with 4xx (503 when Asterisk is unreachable).

    POST /calls, GET /calls, GET /calls/{uid}       dialing/http.py, calls/http.py
    POST /calls/{uid}/<command>                     clinic/call_control.Command: calls/, hold/,
                                                    conference/, transfers/ http.py
    GET  /phone-calls, POST /phone-calls/{id}/adopt takeover/http.py
    GET  /recordings/{name}                         conference/http.py
    GET  /presence                                  presence/http.py
    POST /robot/wake, GET /robot/status             robot/http.py
    POST /progress, GET /events                     progress_api.py
    GET  /health
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from ari_app import progress_api
from ari_app.calls import http as calls_http
from ari_app.calls.notifier import Notifier
from ari_app.calls.store import StoreError
from ari_app.client import AriClient, AriError, AriNotFound
from ari_app.conference import http as conference_http
from ari_app.control_kit import CommandHandler, Handler, actor, body, json_response
from ari_app.core.errors import CallError
from ari_app.dialing import http as dialing_http
from ari_app.features import CallControl
from ari_app.hold import http as hold_http
from ari_app.presence import http as presence_http
from ari_app.robot import http as robot_http
from ari_app.takeover import http as takeover_http
from ari_app.transfers import http as transfers_http
from clinic.call_control import CALLS_PATH, Command, ControlError, ErrorId

log = logging.getLogger(__name__)

# A command is a few hundred bytes of JSON: anything larger is refused with 413 unread.
MAX_BODY = 64 * 1024


def _error(error_id: ErrorId, message: str) -> web.Response:
    err = ControlError(error_id, message)
    return json_response(err.body(), err.status)


def command_handlers(control: CallControl) -> dict[Command, CommandHandler]:
    """Every command of the contract, from the feature that owns it; a command without a
    handler (or two features claiming one) stops the app from being built."""
    handlers: dict[Command, CommandHandler] = {}
    for part in (
        calls_http.commands(control.lifecycle),
        hold_http.commands(control.hold),
        conference_http.commands(control.conference),
        transfers_http.commands(control.transfers),
    ):
        clash = handlers.keys() & part.keys()
        if clash:
            raise RuntimeError(f"commands claimed twice: {sorted(clash)}")
        handlers |= part
    missing = set(Command) - handlers.keys()
    if missing:
        raise RuntimeError(f"commands of clinic/call_control.py without a handler: {sorted(missing)}")
    return handlers


def make_app(
    control: CallControl, notifier: Notifier, ari: AriClient, token: str, keepalive: float = 15.0
) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/health":
            given = request.headers.get("X-Control-Token", "")
            if not token or not hmac.compare_digest(given, token):
                return _error(ErrorId.NOT_AUTHORIZED, "Нет доступа к управлению звонками")
        try:
            return await handler(request)
        except CallError as exc:
            return _error(exc.error_id, exc.message)
        except StoreError as exc:
            log.warning("call log unavailable in %s %s: %s", request.method, request.path, exc)
            return _error(
                ErrorId.LOG_UNAVAILABLE,
                "Журнал звонков временно недоступен: повторите через несколько секунд",
            )
        except AriError as exc:
            log.warning("ARI error in %s %s: %s", request.method, request.path, exc)
            return _error(
                ErrorId.CALL_ENDED if isinstance(exc, AriNotFound) else ErrorId.PBX_FAILED,
                "АТС не выполнила команду: звонок мог завершиться",
            )

    async def health(_request: web.Request) -> web.Response:
        return json_response(
            {
                "ok": True,
                "ari_connected": ari.connected.is_set(),
                "call_log_ready": control.store.ready,
                "call_log_unsaved": control.store.unsaved,
                "calls": len(control.calls),
                "resyncs": control.resyncs,
                "subscribers": notifier.count,
                "presence_snapshots": control.presence.snapshots,
            }
        )

    def route(handler: CommandHandler) -> Handler:
        async def run(request: web.Request) -> web.Response:
            who = actor(request)
            return json_response(await handler(who, request.match_info["uid"], await body(request)))

        return run

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app.router.add_get("/health", health)
    dialing_http.add_routes(app, control.dialing)
    calls_http.add_routes(app, control.lifecycle)
    for command, handler in command_handlers(control).items():
        app.router.add_post(f"{CALLS_PATH}/{{uid}}/{command.value}", route(handler))
    takeover_http.add_routes(app, control.takeover)
    conference_http.add_routes(app, control.conference)
    presence_http.add_routes(app, control.presence)
    if control.robot is not None:
        robot_http.add_routes(app, control.robot)
    progress_api.add_routes(app, notifier, control.store, control.hello, keepalive)
    return app
