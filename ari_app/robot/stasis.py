"""The robot's ARI events. The robot's channels (`robot,<attempt>`, `robot-inbound,<DID>`)
are not calls of call control: their events are taken here first, in order per channel,
and everything else goes on to call control's router (calls/stasis.py) untouched. Once the
robot hands a channel to the registrars it forgets it, and its later events go on too."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ari_app.core.routes import EventHandler
from ari_app.events import ChannelDestroyed, ChannelDtmfReceived, Event, StasisEnd, StasisStart
from ari_app.robot.service import INBOUND, OUTBOUND, RobotCall, RobotService

log = logging.getLogger(__name__)

EVENT_TYPES = ("PlaybackFinished",)  # beside call control's (calls/stasis.py EVENT_TYPES)


class RobotStasis:
    def __init__(self, robot: RobotService, then: EventHandler) -> None:
        self.robot = robot
        self.then = then
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, event: Event) -> None:
        call = self._ours(event)
        if call is None:
            await self.then.handle(event)
            return
        # scheduled, not awaited: the events socket is drained at once; the call's lock
        # (FIFO) keeps its events in order
        task = asyncio.create_task(self._run(call, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ours(self, event: Event) -> RobotCall | None:
        robot = self.robot
        if isinstance(event, StasisStart):
            if event.args and event.args[0] in (OUTBOUND, INBOUND):
                return robot.claim_start(event.channel, list(event.args))
            return None
        if event.type == "PlaybackFinished":
            target = str((event.raw.get("playback") or {}).get("target_uri", ""))
            return robot.calls.get(target.removeprefix("channel:"))
        channel = getattr(event, "channel", None)
        return robot.calls.get(channel.id) if channel is not None else None

    async def _run(self, call: RobotCall, event: Event) -> None:
        try:
            async with call.lock:
                await self._dispatch(call, event)
        except Exception:
            log.exception("robot: handling %s failed", event.type)

    async def _dispatch(self, call: RobotCall, event: Event) -> None:
        robot = self.robot
        if robot.calls.get(call.channel_id) is not call:
            # handed over or ended while this event waited: call control's now
            if not isinstance(event, StasisStart):
                await self.then.handle(event)
            return
        if isinstance(event, StasisStart):
            await robot.on_start(call, event.channel)
        elif isinstance(event, ChannelDtmfReceived):
            await robot.on_dtmf(call, event.digit)
        elif isinstance(event, ChannelDestroyed):
            await robot.on_gone(call, event.cause)
        elif isinstance(event, StasisEnd):
            # left Stasis while still ours: hung up (a channel that came in by the dialplan
            # is not reported to us after this, so no ChannelDestroyed may follow)
            await robot.on_gone(call, 0)
        elif event.type == "PlaybackFinished":
            playback: dict[str, Any] = event.raw.get("playback") or {}
            await robot.on_playback_finished(call, str(playback.get("id", "")))
