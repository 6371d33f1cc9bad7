"""The calls feature's routes: `GET /calls`, `GET /calls/{uid}`, and the commands «Завершить»
and DTMF (clinic/call_control.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ari_app.calls.service import CallsService
from ari_app.control_kit import CommandHandler, actor, json_response, text
from clinic.call_control import CALLS_PATH, Command


def add_routes(app: web.Application, service: CallsService) -> None:
    async def listing(request: web.Request) -> web.Response:
        return json_response({"calls": await service.visible_to(actor(request))})

    async def one(request: web.Request) -> web.Response:
        return json_response(await service.get(actor(request), request.match_info["uid"]))

    app.router.add_get(CALLS_PATH, listing)
    app.router.add_get(CALLS_PATH + "/{uid}", one)


def commands(service: CallsService) -> dict[Command, CommandHandler]:
    async def hangup(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.hangup(who, uid)

    async def dtmf(who: int, uid: str, data: dict[str, Any]) -> dict[str, Any]:
        return await service.dtmf(who, uid, text(data, "digits"))

    return {Command.HANGUP: hangup, Command.DTMF: dtmf}
