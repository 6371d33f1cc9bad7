"""ARI events → call service (Wazo's `stasis.py`): route by event type and the Stasis
arguments our channels carry (`c2c,<uid>,<role>`, `agent,<uid>`, `inbound,<DID>`,
`adopt,<uid>,<role>`)."""

from __future__ import annotations

import contextlib
import logging

from ari_app.calls.service import CallService
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


class CallsStasis:
    def __init__(self, ari: AriClient, service: CallService) -> None:
        self.ari = ari
        self.service = service

    async def handle(self, event: Event) -> None:
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
