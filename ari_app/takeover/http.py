"""`GET /phone-calls` (calls on the actor's own SIP phone that can be taken over) and
`POST /phone-calls/{channel_id}/adopt`."""

from __future__ import annotations

from aiohttp import web

from ari_app.control_kit import actor, json_response
from ari_app.takeover.service import TakeoverService
from clinic.call_control import PHONE_CALLS_PATH


def add_routes(app: web.Application, service: TakeoverService) -> None:
    async def phone_calls(request: web.Request) -> web.Response:
        return json_response({"calls": await service.phone_calls(actor(request))})

    async def adopt(request: web.Request) -> web.Response:
        return json_response(await service.adopt(actor(request), request.match_info["channel_id"]), 201)

    app.router.add_get(PHONE_CALLS_PATH, phone_calls)
    app.router.add_post(PHONE_CALLS_PATH + "/{channel_id}/adopt", adopt)
