"""An incoming call. Trunk → `[clinic-inbound]` → FastAGI patient lookup (fail-open) →
`Stasis(clinic,inbound,<DID>)`. We ring the DID's registrar (DID = his extension) or every
registrar with telephony (`agent,<uid>` legs; each registrar's chosen phones, his SIP phone
and/or his browser softphone, one leg each in a group: core/ringing.py), pop the caller's
card only on the streams of
the registrars whose phones ring; the first to answer gets the call, the others' pop is
withdrawn. Nobody answering makes it «Пропущен».

A call to a registrar's own number is his in the log from the start: missed, it is in his
call log and on the patient's card; the live call is his once he answers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ari_app.calls import queries as q
from ari_app.client import AriError
from ari_app.core import call as c
from ari_app.core import ringing
from ari_app.core.call import Leg, LiveCall, inbound_uid
from ari_app.core.core import CallCore
from ari_app.core.machine import CallState
from ari_app.events import Channel
from ari_app.incoming.notifier import PopNotifier
from clinic.models.calls import DIRECTION_INBOUND, RESULT_MISSED, STATE_CALLING
from clinic.phones import PhoneError, match_key, normalize
from clinic.softphone import DEFAULT_RING

log = logging.getLogger(__name__)


def _direct(did: str, users: list[dict[str, Any]]) -> int | None:
    """The registrar whose own extension the DID is (as queries.inbound_parties reads it)."""
    key = match_key(did)[-8:]
    if len(users) == 1 and key.isdigit() and users[0]["extension"] == key:
        return int(users[0]["id"])
    return None


class IncomingService:
    def __init__(
        self,
        core: CallCore,
        pops: PopNotifier,
        answered: Callable[[LiveCall], None],
        clinic_now: Callable[[], datetime] | None = None,
    ) -> None:
        self.core = core
        self.pops = pops
        self.answered = answered  # «Разговор» as click-to-call has it (dialing.service)
        # None: the clinic's wall clock from its settings (read where the appointments are)
        self.clinic_now = clinic_now
        core.end_hooks.append(self._call_ended)

    async def on_inbound(self, channel: Channel, args: list[str]) -> None:
        core = self.core
        did = args[0] if args else ""
        number = channel.caller_number
        try:
            e164 = normalize(number)
        except PhoneError:
            e164 = number
        patient_id: int | None = None
        with contextlib.suppress(AriError, ValueError):
            raw = await core.ari.get_var(channel.id, "PATIENT_ID")
            patient_id = int(raw) if raw.strip() else None
        now = self.clinic_now() if self.clinic_now is not None else None
        users, summary = await core.store.read(q.inbound_parties, did, patient_id, e164, now)
        name = summary["name"] if summary else (channel.caller_name if channel.caller_name != number else "")
        uid = inbound_uid(channel.id)
        core.store.create_call(
            uid=uid,
            direction=DIRECTION_INBOUND,
            user_id=_direct(did, users),
            patient_id=summary["id"] if summary else None,
            number=e164,
            caller_name=name,
            origin="inbound",
            state=STATE_CALLING,
        )
        call = LiveCall(
            uid,
            DIRECTION_INBOUND,
            None,
            e164,
            summary["id"] if summary else None,
            name,
            origin="inbound",
            state=CallState.CALLING,
        )
        core.registry.add(call)
        core.registry.track(call, Leg(channel.id, c.REMOTE, channel.name, e164))
        async with call.lock:
            await self._ring(call, channel, users, summary, number)

    async def _ring(
        self,
        call: LiveCall,
        channel: Channel,
        users: list[dict[str, Any]],
        summary: dict[str, Any] | None,
        number: str,
    ) -> None:
        core = self.core
        if not users:
            await core.end(call, RESULT_MISSED, "Нет регистраторов с настроенной телефонией")
            return
        await core.quiet(core.ari.call("ring", channelId=channel.id))
        await core.make_bridge(call)
        card = {
            "uid": call.uid,
            "number": call.number,
            "number_display": call.number_display,
            "patient": summary,
            "caller_name": call.caller_name,
        }
        for user in users:
            legs = ringing.legs_for(
                call,
                c.AGENT,
                core.directory.endpoints.of_registrar(user["sip_id"], user.get("ring") or DEFAULT_RING),
                user["extension"],
                user_id=user["id"],
            )
            try:
                await ringing.ring_all(
                    core,
                    call,
                    legs,
                    caller_id=f"{call.caller_name or call.number} <{number}>",
                    timeout=core.timeouts.ring_seconds,
                    app_args=f"agent,{call.uid}",
                    originator=channel.id,
                )
            except AriError:
                continue  # none of his phones can ring (not registered): no pop for him
            call.ringing_users.add(user["id"])
            self.pops.pop(user["id"], card)  # only the registrars whose phones ring
        if not call.ringing_users:
            await core.end(call, RESULT_MISSED, "Телефоны регистраторов недоступны")

    # ------------------------------------------------------------------ ARI events

    async def agent_answered(self, call: LiveCall, leg: Leg, channel: Channel) -> None:
        """A registrar answered: he takes the call; the other phones stop ringing."""
        core = self.core
        if call.live(c.REGISTRAR) is not None:  # another registrar was quicker
            await core.quiet(core.ari.hangup(channel.id))
            return
        leg.role = c.REGISTRAR
        call.user_id = leg.user_id
        caller = call.live(c.REMOTE)
        if caller is None:
            await core.end(call, RESULT_MISSED, "Пациент положил трубку")
            return
        await core.quiet(core.ari.call("answer", channelId=caller.channel_id))
        caller.answered = True
        await core.ari.add_to_bridge(call.bridge_id, caller.channel_id, channel.id)
        others = [lg for lg in call.active_legs() if lg.role == c.AGENT]
        for other in others:
            await core.quiet(core.ari.hangup(other.channel_id))
        self.pops.withdraw(
            call, {lg.user_id for lg in others if lg.user_id is not None}, "Ответил другой регистратор"
        )
        call.ringing_users.discard(leg.user_id or 0)
        core.store.update_call(call.uid, user_id=call.user_id)
        self.answered(call)

    async def agent_gone(self, call: LiveCall, leg: Leg, cause: int | None) -> None:
        """A ringing registrar's phone stopped ringing (rejected, timed out, unreachable); with
        two phones, the last of them (core/ringing.py)."""
        self.pops.withdraw(call, {leg.user_id} if leg.user_id else set(), "Вызов снят")
        if not any(lg.role == c.AGENT for lg in call.active_legs()) and call.live(c.REGISTRAR) is None:
            await self.core.end(call, RESULT_MISSED, "Никто из регистраторов не ответил")

    def _call_ended(self, call: LiveCall, reason: str) -> None:
        if call.ringing_users:
            self.pops.withdraw(call, set(call.ringing_users), reason)
