"""Presence's route on the control API: the snapshot a page paints first (then the events
stream keeps it current). No actor needed: every logged-in user sees the directory, and the
web app has checked the session."""

from __future__ import annotations

from aiohttp import web

from ari_app.control_kit import json_response
from ari_app.presence.service import PresenceService
from clinic.call_control import PRESENCE_PATH


def add_routes(app: web.Application, service: PresenceService) -> None:
    async def snapshot(_request: web.Request) -> web.Response:
        return json_response(service.snapshot())

    app.router.add_get(PRESENCE_PATH, snapshot)
