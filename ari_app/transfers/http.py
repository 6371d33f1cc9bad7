"""`POST /calls/{uid}/transfer` (TransferBody), `/transfer/complete`, `/transfer/cancel`."""

from __future__ import annotations

from typing import Any

from ari_app.control_kit import CommandHandler, text
from ari_app.transfers.service import TransfersService
from clinic.call_control import Command, TransferMode


def commands(service: TransfersService) -> dict[Command, CommandHandler]:
    async def transfer(who: int, uid: str, data: dict[str, Any]) -> dict[str, Any]:
        return await service.transfer(
            who, uid, text(data, "target"), text(data, "mode") or TransferMode.BLIND
        )

    async def complete(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.complete(who, uid)

    async def cancel(who: int, uid: str, _data: dict[str, Any]) -> dict[str, Any]:
        return await service.cancel(who, uid)

    return {Command.TRANSFER: transfer, Command.TRANSFER_COMPLETE: complete, Command.TRANSFER_CANCEL: cancel}
