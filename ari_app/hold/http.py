"""`POST /calls/{uid}/hold` and `/unhold`."""

from __future__ import annotations

from typing import Any

from ari_app.control_kit import CommandHandler
from ari_app.hold.service import HoldService
from clinic.call_control import Command


def commands(service: HoldService) -> dict[Command, CommandHandler]:
    async def hold(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.hold(who, uid)

    async def unhold(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.unhold(who, uid)

    return {Command.HOLD: hold, Command.UNHOLD: unhold}
