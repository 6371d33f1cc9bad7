"""ARI events → the features (Wazo's `stasis.py`): route by event type and the Stasis
arguments our channels carry (`c2c,<uid>,<role>`, `agent,<uid>`, `inbound,<DID>`,
`adopt,<uid>,<role>`), then by the leg's role (core/routes.py).

Events are handled in order per call and concurrently across calls: `handle()` only
schedules the work on the call's chain and returns, so the events socket is drained at once
(a socket left unread stops answering pings) and one busy call never holds up another. A
handler runs under the call's lock, as commands do."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ari_app.calls.service import CallsService
from ari_app.client import AriError
from ari_app.core.call import inbound_uid
from ari_app.core.core import CallCore
from ari_app.core.routes import StasisRoutes
from ari_app.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)
from clinic.models import utcnow

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
_OURS = ("c2c", "agent", "adopt")  # Stasis arguments of legs we originated or redirected in


class CallsStasis:
    def __init__(self, core: CallCore, calls: CallsService, routes: StasisRoutes) -> None:
        self.core = core
        self.calls = calls
        self.routes = routes
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
            if args and args[0] in _OURS and len(args) >= 2:
                return args[1]
            return inbound_uid(event.channel.id)
        if isinstance(event, RecordingFinished | RecordingFailed):
            parts = event.recording.name.split("-")
            return parts[1] if len(parts) >= 3 else event.recording.name
        channel_id = event.channel.id  # type: ignore[attr-defined]
        return self.core.registry.uid_of(channel_id) or inbound_uid(channel_id)

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
            await self._gone(event.channel.id, event.cause)
        elif isinstance(event, StasisEnd):
            # a channel we did not originate (redirected in, or an incoming call) is no longer
            # reported to us after it leaves Stasis: for us it is gone now
            await self._gone(event.channel.id, None)
        elif isinstance(event, ChannelDtmfReceived):
            await self.calls.on_dtmf(event.channel.id, event.digit)
        elif isinstance(event, RecordingFinished | RecordingFailed):
            ok = isinstance(event, RecordingFinished)
            for done in self.routes.recording_done:
                await done(event.recording.name, ok, event.recording.duration if ok else None)

    async def _stasis_start(self, event: StasisStart) -> None:
        args, channel = event.args, event.channel
        kind = args[0] if args else ""
        if kind in _OURS and len(args) >= 2:
            call = self.core.registry.live(args[1])
            if call is None:
                await self._refuse(channel.id)
                return
            async with call.lock:
                leg = call.legs.get(channel.id)
                if leg is None or leg.gone or call.ended:
                    await self._refuse(channel.id)
                    return
                leg.answered = True
                leg.answered_at = utcnow()
                call.mark(f"{leg.role}_answered")
                handler = self.routes.answered.get("adopt" if kind == "adopt" else leg.role)
                if handler is None:
                    log.warning("call %s: no handler for an answered %s leg", call.uid, leg.role)
                    return
                await handler(call, leg, channel)
        elif kind in self.routes.starts:
            await self.routes.starts[kind](channel, args[1:])
        else:
            log.info("StasisStart with unknown args %s on %s: back to the dialplan", args, channel.name)
            with contextlib.suppress(AriError):
                await self.core.ari.call("continue", channelId=channel.id)

    async def _refuse(self, channel_id: str) -> None:
        await self.core.quiet(self.core.ari.hangup(channel_id))

    async def _gone(self, channel_id: str, cause: int | None) -> None:
        registry = self.core.registry
        uid = registry.untrack(channel_id)
        call = registry.live(uid or "")
        if call is None:
            return
        async with call.lock:
            leg = call.legs.get(channel_id)
            if leg is None or leg.gone:
                return
            self.calls.mark_gone(call, leg, cause)
            if call.ended:
                return
            handler = self.routes.gone.get(leg.role, self.calls.leg_gone)
            await handler(call, leg, cause)
