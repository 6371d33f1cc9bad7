"""`POST /calls/{uid}/conference`, `/record/start`, `/record/stop`, and `GET /recordings/{name}`
(the stored WAV: the web side checks who may listen, we only serve the file)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ari_app.conference.service import ConferenceService
from ari_app.control_kit import CommandHandler, actor, json_response, text
from ari_app.core.errors import BadRequest
from clinic.call_control import RECORDINGS_PATH, Command, ErrorId


def commands(service: ConferenceService) -> dict[Command, CommandHandler]:
    async def conference(who: int, uid: str, data: dict[str, Any]) -> dict[str, Any]:
        return await service.conference(who, uid, text(data, "target"))

    async def record_start(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.record_start(who, uid)

    async def record_stop(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.record_stop(who, uid)

    return {
        Command.CONFERENCE: conference,
        Command.RECORD_START: record_start,
        Command.RECORD_STOP: record_stop,
    }


def add_routes(app: web.Application, service: ConferenceService) -> None:
    async def recording(request: web.Request) -> web.Response:
        actor(request)
        name = request.match_info["name"]
        if not name.replace("-", "").isalnum():
            raise BadRequest("Некорректное имя записи")
        data = await service.recording_file(name)
        if data is None:
            return json_response({"error": "Запись не найдена", "error_id": ErrorId.NOT_FOUND.value}, 404)
        return web.Response(body=data, content_type="audio/wav")

    app.router.add_get(RECORDINGS_PATH + "/{name}", recording)
