"""The robot's control API routes (thin): `POST /robot/wake` (a campaign was started or
changed: look for due calls now) and `GET /robot/status` (live robot calls)."""

from __future__ import annotations

from aiohttp import web

from ari_app.control_kit import json_response
from ari_app.robot.service import RobotService

WAKE_PATH = "/robot/wake"
STATUS_PATH = "/robot/status"


def add_routes(app: web.Application, robot: RobotService) -> None:
    async def wake(_request: web.Request) -> web.Response:
        robot.wake()
        return json_response({"ok": True})

    async def status(_request: web.Request) -> web.Response:
        return json_response(robot.status())

    app.router.add_post(WAKE_PATH, wake)
    app.router.add_get(STATUS_PATH, status)
