"""Conference: a third leg originated into the same conversation bridge. Recording: the
bridge recorded (`call-<uid>-<n>.wav`) with a `call_recordings` row; played back through
the control API."""

from __future__ import annotations

from typing import Any

from ari_app.client import AriError, AriNotFound
from ari_app.core import call as c
from ari_app.core import ringing
from ari_app.core.call import Leg, LiveCall
from ari_app.core.core import CallCore
from ari_app.core.errors import CallEnded, InvalidState, PbxUnavailable
from ari_app.core.machine import CallEvent
from ari_app.directory import reach
from ari_app.events import Channel
from clinic.models.calls import RESULT_ANSWERED


class ConferenceService:
    def __init__(self, core: CallCore) -> None:
        self.core = core

    async def conference(self, actor_id: int, uid: str, target: str) -> dict[str, Any]:
        core = self.core
        async with core.command(actor_id, uid, CallEvent.CONFERENCE) as (actor, call):
            if call.live(c.THIRD) is not None:
                raise InvalidState("В конференции уже три участника")
            tgt = await core.directory.target(actor, target)
            endpoints = tgt.endpoints
            if tgt.is_extension:  # only his registered phones ring (both, if both are)
                _, endpoints = await reach.check(core.ari, None, reach.Phones(tgt.endpoints, tgt.label))
            legs = ringing.legs_for(call, c.THIRD, endpoints, tgt.label)
            registrar = call.live(c.REGISTRAR)
            try:
                await ringing.ring_all(
                    core,
                    call,
                    legs,
                    caller_id=f"{actor.name} <{actor.extension}>",
                    timeout=core.timeouts.for_target(tgt.is_extension),
                    originator=registrar.channel_id if registrar else None,
                )
            except AriError as exc:
                raise PbxUnavailable("АТС не приняла вызов третьего участника") from exc
            core.changed(call, message=f"Вызов участника конференции {tgt.label}")
            return call.snapshot()

    async def third_answered(self, call: LiveCall, leg: Leg, channel: Channel) -> None:
        try:
            await self.core.ari.add_to_bridge(call.bridge_id, channel.id)
        except AriNotFound:
            leg.answered = False  # hung up as it answered: its ChannelDestroyed says so
            return
        self.core.changed(call, message=f"Участник {leg.label} в конференции")

    async def third_gone(self, call: LiveCall, leg: Leg, cause: int | None) -> None:
        if not leg.answered:
            self.core.changed(call, message=f"Участник {leg.label} не ответил")
            return
        if len([lg for lg in call.active_legs() if lg.answered]) < 2:
            await self.core.end(call, call.result or RESULT_ANSWERED, "Собеседник положил трубку")
        else:
            self.core.changed(call)

    # ------------------------------------------------------------------ recording

    async def record_start(self, actor_id: int, uid: str) -> dict[str, Any]:
        core = self.core
        async with core.command(actor_id, uid, CallEvent.RECORD_START) as (actor, call):
            if call.recording is not None:
                raise InvalidState("Запись уже идёт")
            call.recordings += 1
            name = f"call-{call.uid}-{call.recordings}"
            try:
                await core.ari.record_bridge(call.bridge_id, name)
            except AriNotFound as exc:
                raise CallEnded("Звонок уже завершён") from exc
            call.recording = name
            core.store.add_recording(call.uid, name, call.patient_id, actor.id)
            core.changed(call)
            return call.snapshot()

    async def record_stop(self, actor_id: int, uid: str) -> dict[str, Any]:
        core = self.core
        async with core.command(actor_id, uid, CallEvent.RECORD_STOP) as (_, call):
            if call.recording is None:
                raise InvalidState("Запись не идёт")
            name, call.recording = call.recording, None
            await core.quiet(core.ari.stop_recording(name))
            core.changed(call)
            return call.snapshot()

    async def recording_done(self, name: str, ok: bool, duration: int | None) -> None:
        await self.core.store.finish_recording(name, "done" if ok else "failed", duration)
        registry = self.core.registry
        for call in list(registry.calls.values()) + list(registry.ended.values()):
            if call.recording == name:
                call.recording = None
                self.core.changed(call)

    async def recording_file(self, name: str) -> bytes | None:
        """The stored WAV, or None when Asterisk has no such recording."""
        try:
            return await self.core.ari.recording_file(name)
        except AriNotFound:
            return None
