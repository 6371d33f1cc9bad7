"""ARI events → call service (Wazo's `stasis.py`): route by event type and the Stasis
arguments our channels carry (`c2c,<uid>,<role>`, `agent,<uid>`, `inbound,<DID>`,
`adopt,<uid>,<role>`).

Events are handled in order per call and concurrently across calls: `handle()` only
schedules the work on the call's chain and returns, so the events socket is drained at once
(a socket left unread stops answering pings) and one busy call never holds up another."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ari_app.calls.service import CallService, inbound_uid
from ari_app.client import AriClient, AriError
from ari_app.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)

log = logging.getLogger(__name__)

_HANDLED = (StasisStart, StasisEnd, ChannelDestroyed, ChannelDtmfReceived, RecordingFinished, RecordingFailed)
# what the app asks Asterisk to send at all (application event filter)
EVENT_TYPES = (
    "StasisStart",
    "StasisEnd",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "RecordingStarted",
    "RecordingFinished",
    "RecordingFailed",
    "ApplicationReplaced",
)


class CallsStasis:
    def __init__(self, ari: AriClient, service: CallService) -> None:
        self.ari = ari
        self.service = service
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, event: Event) -> None:
        """Schedule `event` after the earlier events of the same call; return at once."""
        if not isinstance(event, _HANDLED):
            return
        key = self._key(event)
        previous = self._tails.get(key)
        task = asyncio.create_task(self._after(previous, event))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda t, k=key: self._done(k, t))

    def _key(self, event: Event) -> str:
        if isinstance(event, StasisStart):
            args = event.args
            if args and args[0] in ("c2c", "agent", "adopt") and len(args) >= 2:
                return args[1]
            return inbound_uid(event.channel.id)
        if isinstance(event, RecordingFinished | RecordingFailed):
            parts = event.recording.name.split("-")
            return parts[1] if len(parts) >= 3 else event.recording.name
        channel_id = event.channel.id  # type: ignore[attr-defined]
        return self.service.by_channel.get(channel_id) or inbound_uid(channel_id)

    def _done(self, key: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]

    async def _after(self, previous: asyncio.Task[None] | None, event: Event) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        try:
            await self.dispatch(event)
        except Exception:
            log.exception("handling %s failed", event.type)

    async def dispatch(self, event: Event) -> None:
        log.debug("ARI %s %s", event.type, getattr(getattr(event, "channel", None), "name", ""))
        if isinstance(event, StasisStart):
            await self._stasis_start(event)
        elif isinstance(event, ChannelDestroyed):
            await self.service.on_channel_gone(event.channel.id, event.cause)
        elif isinstance(event, StasisEnd):
            # a channel we did not originate (redirected in, or an incoming call) is no longer
            # reported to us after it leaves Stasis: for us it is gone now
            await self.service.on_channel_gone(event.channel.id, None)
        elif isinstance(event, ChannelDtmfReceived):
            await self.service.on_dtmf(event.channel.id, event.digit)
        elif isinstance(event, RecordingFinished):
            await self.service.on_recording_done(event.recording.name, True, event.recording.duration)
        elif isinstance(event, RecordingFailed):
            await self.service.on_recording_done(event.recording.name, False, None)

    async def _stasis_start(self, event: StasisStart) -> None:
        args = event.args
        kind = args[0] if args else ""
        if kind == "c2c" and len(args) >= 3:
            await self.service.on_answered(event.channel, args[1], args[2])
        elif kind == "agent" and len(args) >= 2:
            await self.service.on_answered(event.channel, args[1], "agent")
        elif kind == "adopt" and len(args) >= 3:
            await self.service.on_answered(event.channel, args[1], args[2])
        elif kind == "inbound":
            await self.service.on_inbound(event.channel, args[1] if len(args) > 1 else "")
        else:
            log.info("StasisStart with unknown args %s on %s: back to the dialplan", args, event.channel.name)
            with contextlib.suppress(AriError):
                await self.ari.call("continue", channelId=event.channel.id)
