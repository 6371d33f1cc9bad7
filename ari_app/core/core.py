"""The steps every call-control feature takes: find the call a command names and take its
lock, originate a leg, make the bridges, move a party on and off hold, hand a call over to
another registrar, and end a call (hang up, delete its bridges, write its log row).

The conversation happens in one `mixing,dtmf_events` bridge (`c-<uid>`); a held party waits
in a holding bridge (`h-<uid>`) with music on hold, where it hears the music and nobody
hears it. The call log is written through `store`, the browsers are told through
`notifier`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ari_app.calls import queries as q
from ari_app.calls.queries import Actor
from ari_app.calls.store import CallStore
from ari_app.client import AriClient, AriError, AriNotFound
from ari_app.core.call import Leg, LiveCall
from ari_app.core.errors import CallEnded, PbxUnavailable
from ari_app.core.machine import CallEvent
from ari_app.core.notifier import CallNotifier
from ari_app.core.registry import CallRegistry
from ari_app.directory.service import DirectoryService
from clinic.models import utcnow
from clinic.models.calls import RESULT_ANSWERED, STATE_ENDED

log = logging.getLogger(__name__)

NO_PBX = "Нет связи с АТС (Asterisk): повторите через несколько секунд"


@dataclass(frozen=True)
class Timeouts:
    ring_seconds: int = 30  # a registrar's or an extension's phone
    outside_seconds: int = 45  # a number through the trunk

    def for_target(self, is_extension: bool) -> int:
        return self.ring_seconds if is_extension else self.outside_seconds


class CallCore:
    def __init__(
        self,
        ari: AriClient,
        store: CallStore,
        notifier: CallNotifier,
        registry: CallRegistry,
        directory: DirectoryService,
        timeouts: Timeouts,
    ) -> None:
        self.ari = ari
        self.store = store
        self.notifier = notifier
        self.registry = registry
        self.directory = directory
        self.timeouts = timeouts
        # run as a call ends, before its log row is written (the screen pop is withdrawn)
        self.end_hooks: list[Callable[[LiveCall, str], None]] = []

    # ------------------------------------------------------------------ commands

    @contextlib.asynccontextmanager
    async def command(
        self, actor_id: int, uid: str, event: CallEvent
    ) -> AsyncIterator[tuple[Actor, LiveCall]]:
        """The call `uid` for a command of `actor_id`, under its lock, once its state accepts
        `event` (else 409 with the reason, and nothing is done)."""
        actor = await self.directory.actor(actor_id)
        if self.registry.find(uid) is None:
            await self._ended_in_log(uid)
        call = self.registry.owned(actor, uid)
        async with call.lock:
            call.check(event)
            if not self.ari.connected.is_set():
                raise PbxUnavailable(NO_PBX)
            yield actor, call

    async def _ended_in_log(self, uid: str) -> None:
        """A uid not live here: maybe an old call from the log (409), or nothing (404)."""
        found = await self.store.read(q.logged_call, uid)
        if found is not None:
            raise CallEnded(f"Звонок уже завершён: {found[0] or 'вызов окончен'}")

    # ------------------------------------------------------------------ ARI steps

    async def quiet(self, coro: Awaitable[Any]) -> None:
        """An ARI call whose failure does not matter (the channel may be gone already)."""
        with contextlib.suppress(AriError):
            await coro

    async def originate(
        self,
        call: LiveCall,
        leg: Leg,
        *,
        caller_id: str,
        timeout: int,
        originator: str | None = None,
        app_args: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        self.registry.track(call, leg)
        try:
            await self.ari.originate(
                leg.endpoint,
                channel_id=leg.channel_id,
                app_args=app_args or f"c2c,{call.uid},{leg.role}",
                caller_id=caller_id,
                timeout=timeout,
                originator=originator,
                variables=variables,
            )
        except AriError as exc:
            leg.gone = True
            self.registry.untrack(leg.channel_id)
            log.warning("originate %s failed: %s", leg.endpoint, exc)
            raise

    async def make_bridge(self, call: LiveCall) -> None:
        """The call's conversation bridge (`mixing,dtmf_events`)."""
        call.bridges.add(call.bridge_id)  # from the request on: a call ending meanwhile deletes it
        await self.ari.create_bridge(call.bridge_id, name=f"call {call.uid}")

    async def to_hold(self, call: LiveCall, leg: Leg) -> None:
        """Move a party out of the conversation into the holding bridge with music."""
        try:
            await self.ari.call(
                "bridge_create", bridgeId=call.hold_bridge_id, type="holding", name=f"hold {call.uid}"
            )
            call.bridges.add(call.hold_bridge_id)
            await self.ari.remove_from_bridge(call.bridge_id, leg.channel_id)
            await self.ari.add_to_bridge(call.hold_bridge_id, leg.channel_id)
            # music to the held party itself (not the bridge's announcer): AMI then reports
            # MusicOnHoldStart on that channel
            await self.ari.call("moh_start", channelId=leg.channel_id, mohClass="default")
        except AriNotFound as exc:
            raise CallEnded("Собеседник уже положил трубку") from exc

    async def from_hold(self, call: LiveCall, leg: Leg) -> None:
        await self.quiet(self.ari.call("moh_stop", channelId=leg.channel_id))
        with contextlib.suppress(AriNotFound):
            await self.ari.remove_from_bridge(call.hold_bridge_id, leg.channel_id)
        try:
            await self.ari.add_to_bridge(call.bridge_id, leg.channel_id)
        except AriNotFound as exc:
            raise CallEnded("Собеседник уже положил трубку") from exc
        await self.quiet(self.ari.destroy_bridge(call.hold_bridge_id))
        call.bridges.discard(call.hold_bridge_id)

    def hand_over(self, call: LiveCall, to_user: int | None, reason: str) -> None:
        """After a transfer: the registrar who had the call no longer controls it (his window
        frees the line, his list drops it); the registrar who took it does, and the call is
        his in the log. A transfer to a number leaves the log's registrar as it was."""
        before = call.user_id
        call.user_id = to_user
        log.info("call %s: handed over from user %s to %s", call.uid, before, to_user)
        if before is not None and before != to_user:
            self.notifier.released(call, before, reason)
        if to_user is not None:
            self.store.update_call(call.uid, user_id=to_user)

    def changed(self, call: LiveCall, **extra: Any) -> None:
        self.notifier.changed(call, **extra)

    # ------------------------------------------------------------------ the end

    async def end(self, call: LiveCall, result: str, reason: str) -> None:
        """End the call (the machine's END; a call already ended is left alone): hang up its
        legs, delete its bridges, write its log row and tell the browsers."""
        if call.ended:
            return
        if call.reason.startswith("Переведён"):
            reason = f"{call.reason}; {reason}"
        call.fire(CallEvent.END)
        call.reason = reason
        call.result = call.result if call.result == RESULT_ANSWERED else result
        if call.ringback is not None:
            call.ringback.cancel()
        if call.recording is not None:
            name, call.recording = call.recording, None
            await self.quiet(self.ari.stop_recording(name))
        call.transfer = None
        for leg in call.active_legs():
            await self.quiet(self.ari.hangup(leg.channel_id))
        for bridge_id in sorted(call.bridges):
            await self.quiet(self.ari.destroy_bridge(bridge_id))
        call.bridges.clear()
        for hook in self.end_hooks:
            hook(call, reason)
        await self.store.end_call(
            call.uid,
            legs=[leg.row() for leg in call.legs.values()],
            state=STATE_ENDED,
            result=call.result,
            reason=reason,
            ended_at=utcnow(),
        )
        self.registry.retire(call)
        self.changed(call)
