"""`POST /calls` (clinic/call_control.py DialBody): click-to-call."""

from __future__ import annotations

from aiohttp import web

from ari_app.control_kit import actor, body, json_response, opt_int, text
from ari_app.dialing.service import DialingService
from clinic.call_control import CALLS_PATH


def add_routes(app: web.Application, service: DialingService) -> None:
    async def create(request: web.Request) -> web.Response:
        data = await body(request)
        target = text(data, "target") or text(data, "number") or text(data, "extension")
        snap = await service.dial(
            actor(request),
            target,
            patient_id=opt_int(data, "patient_id"),
            appointment_id=opt_int(data, "appointment_id"),
            callback_of=text(data, "callback_of") or None,
        )
        return json_response(snap, 201)

    app.router.add_post(CALLS_PATH, create)
