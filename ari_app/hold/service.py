"""Hold: the patient leaves the conversation bridge for the call's holding bridge, where he
hears music on hold and nobody hears him; «Говорить» brings him back."""

from __future__ import annotations

from typing import Any

from ari_app.core import call as c
from ari_app.core.core import CallCore
from ari_app.core.errors import CallEnded
from ari_app.core.machine import CallEvent
from clinic.models.calls import STATE_HELD, STATE_TALKING


class HoldService:
    def __init__(self, core: CallCore) -> None:
        self.core = core

    async def hold(self, actor_id: int, uid: str) -> dict[str, Any]:
        async with self.core.command(actor_id, uid, CallEvent.HOLD) as (_, call):
            remote = call.live(c.REMOTE)
            if remote is None or not remote.answered:
                raise CallEnded("Собеседник уже положил трубку")
            await self.core.to_hold(call, remote)
            call.fire(CallEvent.HOLD)
            self.core.store.update_call(call.uid, state=STATE_HELD)
            self.core.changed(call)
            return call.snapshot()

    async def unhold(self, actor_id: int, uid: str) -> dict[str, Any]:
        async with self.core.command(actor_id, uid, CallEvent.UNHOLD) as (_, call):
            remote = call.live(c.REMOTE)
            if remote is None:
                raise CallEnded("Собеседник уже положил трубку")
            await self.core.from_hold(call, remote)
            call.fire(CallEvent.UNHOLD)
            self.core.store.update_call(call.uid, state=STATE_TALKING)
            self.core.changed(call)
            return call.snapshot()
