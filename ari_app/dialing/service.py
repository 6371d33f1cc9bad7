"""Click-to-call. The registrar presses «Звонок» → the user and the target are checked
against the directory, the call row is queued for the log, «Набор» goes out, and the
registrar's phone is originated (`c2c,<uid>,registrar`), nothing else in front of it (his
chosen phones: SIP phone, browser softphone or both, one leg each, the first to answer
keeps the call: core/ringing.py), or, when his browser softphone keeps a standby line
(ari_app/standby), that line is his leg, up already → on its StasisStart (at once for a
standby line) the patient's leg is originated and the `mixing,dtmf_events` bridge is made
beside it; if the patient has not answered within RINGBACK_AFTER the registrar hears
ringback → on the patient's StasisStart both join the bridge in one request: «Разговор»."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Any

from ari_app.calls import queries as q
from ari_app.calls.store import StoreError
from ari_app.client import AriError, AriNotFound
from ari_app.core import call as c
from ari_app.core import ringing
from ari_app.core.call import Leg, LiveCall
from ari_app.core.core import NO_PBX, CallCore
from ari_app.core.errors import BadRequest, Busy, PbxUnavailable, Unreachable
from ari_app.core.machine import CallEvent, CallState
from ari_app.directory import reach
from ari_app.directory.service import Target
from ari_app.events import Channel
from ari_app.standby.service import Line, StandbyService
from clinic.models import utcnow
from clinic.models.calls import (
    DIRECTION_OUTBOUND,
    RESULT_ANSWERED,
    RESULT_FAILED,
    STATE_DIALING,
    STATE_TALKING,
)
from clinic.softphone import WEB_SUFFIX

log = logging.getLogger(__name__)

RINGBACK_AFTER = 0.4  # seconds from dialling the patient to the registrar's ringing tone
# The registrar's own callback leg to his browser softphone is answered by the window at once
# (he has just pressed «Звонок»: asking him for «Говорить» as well is a step no desk phone's
# click-to-call asks). `Call-Info: <uri>;answer-after=0` is the auto-answer convention of
# Polycom, Yealink, Wazo and others; Asterisk adds the header to the leg's INVITE
# (res_pjsip_header_funcs). Only this leg carries it: incoming calls, transfers, conferences
# and extension-to-extension calls ring and wait for «Говорить»; the desk phone of a «Оба»
# user rings as before.
AUTO_ANSWER_HEADER = "PJSIP_HEADER(add,Call-Info)"
AUTO_ANSWER_VALUE = "<sip:mis-telephony>;answer-after=0"


def auto_answer(endpoints: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The originate variables of the registrar's own legs: the browser's only."""
    return {e: {AUTO_ANSWER_HEADER: AUTO_ANSWER_VALUE} for e in endpoints if e.endswith(WEB_SUFFIX)}


class DialingService:
    def __init__(self, core: CallCore, standby: StandbyService | None = None) -> None:
        self.core = core
        self.standby = standby
        self._tasks: set[asyncio.Task[None]] = set()

    async def dial(
        self,
        actor_id: int,
        target: str,
        *,
        patient_id: int | None = None,
        appointment_id: int | None = None,
        callback_of: str | None = None,
    ) -> dict[str, Any]:
        """Click-to-call: ring the registrar's phone; when he answers, call the target and
        bridge them."""
        core = self.core
        t0 = time.monotonic()
        # users, extensions and the trunk from the cached directory: the checks cost no
        # database round trip on the way to dialling
        actor, tgt = await core.directory.caller_and_target(actor_id, target)
        name = ""
        if patient_id is not None:
            found = await core.store.read(q.patient_name, patient_id)
            if found is None:
                raise BadRequest("Пациент не найден")
            name = found
        elif tgt.is_extension:
            name = tgt.name
        if core.registry.line_busy(actor.id):
            raise Busy("Линия занята: сначала завершите текущий звонок")
        if not core.ari.connected.is_set():
            raise PbxUnavailable(NO_PBX)
        own = reach.Phones(
            core.directory.endpoints.of_registrar(actor.sip_id, actor.ring), actor.extension, actor.ring
        )
        # a phone that is not registered is named now, before anything is dialled or logged;
        # only the registered ones of a user's phones are dialled
        own_ringing, target_ringing = await reach.check(
            core.ari, own, reach.Phones(tgt.endpoints, tgt.label) if tgt.is_extension else None
        )
        if tgt.is_extension:
            tgt = dataclasses.replace(tgt, endpoints=target_ringing)
        uid = uuid.uuid4().hex[:16]
        row = {
            "uid": uid,
            "direction": DIRECTION_OUTBOUND,
            "user_id": actor.id,
            "patient_id": patient_id,
            "appointment_id": appointment_id,
            "number": tgt.label,
            "caller_name": name,
            "origin": "ui",
            "state": STATE_DIALING,
        }
        # who has this number: looked up as the call is logged (one transaction), beside
        # the dialling, not before it
        lookup = None
        if patient_id is None and not tgt.is_extension:
            lookup = core.store.create_call_for_number(tgt.label, **row)
        else:
            core.store.create_call(**row)
        call = LiveCall(uid, DIRECTION_OUTBOUND, actor.id, tgt.label, patient_id, name, t0=t0)
        call.target = tgt
        core.registry.add(call)
        if callback_of:
            core.store.submit(q.mark_called_back, callback_of, uid)
        # the browser softphone's standby line, when its window keeps one: his leg is up already
        # (a «Оба» user's desk phone is not rung then: the softphone would take the call first)
        line = self.standby.claim(own_ringing) if self.standby is not None else None
        legs = ringing.legs_for(call, c.REGISTRAR, own_ringing, actor.extension, user_id=actor.id)
        call.mark("checked")
        core.changed(call)  # «Набор»: before anything happens in Asterisk
        shown = f"{name or tgt.label} <{tgt.label}>"
        try:
            # only the registrar's phone(s) now: the bridge is made once he answers (Asterisk
            # runs one events socket's requests in turn, and nothing else may delay this one).
            # Under the call's lock: the legs' events wait for every originate's answer
            async with call.lock:
                if line is not None:
                    shown_as = name or call.number_display
                    await self._on_standby(call, line, actor.extension, shown_as, tgt.label)
                    return call.snapshot()
                try:
                    await ringing.ring_all(core, call, legs, caller_id=shown,
                                           timeout=core.timeouts.ring_seconds,
                                           variables=auto_answer(own_ringing))  # fmt: skip
                    call.mark("registrar_originated")
                except AriError as exc:
                    await self._never_started(call, own, exc)
        finally:
            if lookup is not None:
                lookup.add_done_callback(lambda done: self._found(call, done))
        return call.snapshot()

    async def _on_standby(self, call: LiveCall, line: Line, extension: str, name: str, number: str) -> None:
        """The registrar's leg is his softphone's standby line: answered long ago, so the
        patient is dialled now, and then the window is told whom it talks to. Under the
        call's lock."""
        leg = Leg(line.channel_id, c.REGISTRAR, line.endpoint, extension, user_id=call.user_id)
        self.core.registry.track(call, leg)
        leg.answered, leg.answered_at = True, utcnow()
        call.mark("registrar_originated")
        call.mark("registrar_answered")
        call.on_standby = True
        call.mark("standby")
        assert self.standby is not None
        await self.registrar_answered(call, leg, Channel(line.channel_id, name=line.endpoint))
        # the patient first; this request waits for the line's channel thread, over HTTP so
        # that it holds no other request up (ari/ops.py HTTP_ONLY)
        await self.standby.show_peer(line.channel_id, name, number)

    async def _never_started(self, call: LiveCall, own: reach.Phones, exc: AriError) -> None:
        """Asterisk refused to ring the registrar's phone(s): nothing rang, so the call leaves
        the log (a registrar's log lists calls, not refusals) and the window is told why.
        Raises the reason. Under the call's lock."""
        core = self.core
        log.warning("click-to-call %s: originate %s refused: %s", call.uid, own.endpoints, exc)
        call.fire(CallEvent.END)
        call.reason, call.result = "Вызов не состоялся", RESULT_FAILED
        core.registry.retire(call)
        core.changed(call)
        try:
            await core.store.run(q.discard_call, call.uid)
        except StoreError as err:  # the reason matters more to the registrar than the log
            log.warning("click-to-call %s: the refused call stays in the log: %s", call.uid, err)
        if await reach.any_registered(core.ari, own.endpoints) is False:  # unregistered since the check
            raise Unreachable(reach.own_phone_offline(own.extension, own.ring)) from exc
        raise PbxUnavailable("АТС не приняла вызов: попробуйте ещё раз") from exc

    def _found(self, call: LiveCall, lookup: asyncio.Future[tuple[int | None, str]]) -> None:
        """Whose number it is, when the call log has answered: the window gets the patient's
        name by the event stream (the call goes on whatever the answer)."""
        if lookup.cancelled():
            return
        exc = lookup.exception()
        if exc is not None:
            log.warning("patient lookup failed: %s", exc)
            return
        found_id, found_name = lookup.result()
        if found_id is not None and call.patient_id is None:
            call.patient_id, call.caller_name = found_id, found_name
            self.core.changed(call)
            registrar = call.live(c.REGISTRAR)
            if call.on_standby and registrar is not None and self.standby is not None:
                # the window was told the number; now it learns whose it is
                shown = self.standby.show_peer(registrar.channel_id, found_name, call.number)
                task = asyncio.create_task(shown)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ ARI events

    async def registrar_answered(self, call: LiveCall, leg: Leg, channel: Channel) -> None:
        """Leg A answered: dial the patient and make the bridge, both at once."""
        core = self.core
        if call.direction != DIRECTION_OUTBOUND or call.state is not CallState.DIALING:
            return  # a transfer's taker or an adopted leg: nothing to dial
        call.fire(CallEvent.REGISTRAR_ANSWERED)
        core.changed(call)
        tgt: Target = call.target
        # an extension rings every chosen phone of its user (core/ringing.py)
        remotes = ringing.legs_for(call, c.REMOTE, tgt.endpoints, tgt.label)
        # the patient's phone first, then the bridge (ready long before anyone answers); the
        # registrar waits outside it: both join it in one request when the patient answers
        try:
            await asyncio.gather(
                ringing.ring_all(
                    core,
                    call,
                    remotes,
                    caller_id=f"{leg.label} <{leg.label}>",
                    timeout=core.timeouts.for_target(tgt.is_extension),
                    originator=channel.id,
                ),
                core.make_bridge(call),
            )
        except AriError as exc:
            log.warning("click-to-call %s: %r", call.uid, exc)
            offline = tgt.is_extension and await reach.any_registered(core.ari, tgt.endpoints) is False
            why = reach.phone_offline(tgt.label) if offline else "АТС не приняла вызов абонента"
            await core.end(call, RESULT_FAILED, why)
            return
        if not call.answered_at and not call.ended:
            call.ringback = asyncio.get_running_loop().call_later(
                RINGBACK_AFTER, self._ringback, call, channel.id
            )

    async def remote_answered(self, call: LiveCall, leg: Leg, channel: Channel) -> None:
        """The patient answered: he and the registrar join the bridge in one request."""
        core = self.core
        if call.ringback is not None:
            call.ringback.cancel()
        registrar = call.live(c.REGISTRAR)
        joining = [registrar.channel_id, channel.id] if registrar is not None else [channel.id]
        try:
            # a standby line was told whom it talks to (standby.show_peer); the bridge would
            # tell it the patient leg's caller ID instead, which is the registrar's own number
            await core.ari.add_to_bridge(call.bridge_id, *joining, keep_identities=call.on_standby)
        except AriNotFound:
            # a party hung up as the patient answered: nobody talked; its ChannelDestroyed,
            # next on this call's chain, ends the call by its cause
            leg.answered = False
            return
        if registrar is not None and call.ringing is not None:
            asyncio.create_task(self._stop_ringing(call, registrar.channel_id))
        self.answered(call)

    def answered(self, call: LiveCall) -> None:
        """Both parties talk: «Разговор» (the machine's ANSWERED), logged as answered."""
        call.fire(CallEvent.ANSWERED)
        call.result = RESULT_ANSWERED
        call.answered_at = utcnow()
        call.bridged_ms = (time.monotonic() - call.t0) * 1000
        call.mark("bridged")
        self.core.store.update_call(
            call.uid, state=STATE_TALKING, result=RESULT_ANSWERED, answered_at=call.answered_at
        )
        self.core.changed(call)

    def _ringback(self, call: LiveCall, channel_id: str) -> None:
        """Ringing tone to the registrar while the patient's phone rings. Not at once: a call
        answered within RINGBACK_AFTER (far shorter than any network's post-dial delay) never
        hears a blip of it, and costs Asterisk no ring + ring_stop."""
        if not call.answered_at and not call.ended and call.live(c.REGISTRAR) is not None:
            call.ringing = asyncio.create_task(
                self.core.quiet(self.core.ari.call("ring", channelId=channel_id))
            )

    async def _stop_ringing(self, call: LiveCall, channel_id: str) -> None:
        if call.ringing is not None:
            await call.ringing  # ring_stop must never overtake its ring
        await self.core.quiet(self.core.ari.call("ring_stop", channelId=channel_id))
