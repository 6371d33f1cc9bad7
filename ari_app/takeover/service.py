"""Take-over. A call from the registrar's own phone (his SIP phone or his browser softphone,
`<sip_id>-web`: both are his) stays in the dialplan until he takes it over (window →
«Звонки с вашего телефона»): both channels are redirected (AMI) into the Stasis app and
bridged there (Wazo's convert_to_stasis); from then on it is a call like any other, logged
from its dialling."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ari_app.calls import queries as q
from ari_app.client import AriError
from ari_app.core import call as c
from ari_app.core.call import Leg, LiveCall
from ari_app.core.core import CallCore
from ari_app.core.errors import NoSuchCall, PbxUnavailable
from ari_app.core.machine import CallEvent, CallState
from ari_app.events import Channel
from ari_app.takeover import timing
from clinic.channels import pjsip_endpoint
from clinic.models import utcnow
from clinic.models.calls import DIRECTION_OUTBOUND, RESULT_ANSWERED, STATE_TALKING
from clinic.phones import PhoneError, normalize
from clinic.softphone import owner_sip_id

Redirect = Callable[[str, str, dict[str, str]], Awaitable[None]]


class TakeoverService:
    def __init__(self, core: CallCore, redirect_to_stasis: Redirect | None) -> None:
        self.core = core
        # AMI Redirect of a channel (+ extra channel) to the convert-to-stasis context
        self.redirect_to_stasis = redirect_to_stasis

    async def phone_calls(self, actor_id: int) -> list[dict[str, Any]]:
        """The registrar's calls placed from his SIP phone or his softphone that run in the
        dialplan (not under our control yet)."""
        core = self.core
        actor = await core.directory.actor(actor_id)
        if not actor.has_telephony:
            return []
        channels = await core.ari.channels()
        by_name = {ch.name: ch for ch in channels}
        out = []
        for ch in channels:
            endpoint = pjsip_endpoint(ch.name)
            mine = endpoint is not None and owner_sip_id(endpoint) == actor.sip_id
            if not mine or ch.app_name == "Stasis" or ch.state != "Up":
                continue
            if core.registry.knows_channel(ch.id):
                continue
            with contextlib.suppress(AriError):
                peer = by_name.get(await core.ari.get_var(ch.id, "BRIDGEPEER"))
                if peer is not None:
                    # dialled out through the trunk: the number is the dialplan's extension
                    outbound = ch.context.startswith("clinic-outbound")
                    number = ch.exten if outbound else (peer.caller_number or ch.exten)
                    out.append({"channel_id": ch.id, "peer_id": peer.id, "number": number,
                                "endpoint": f"PJSIP/{endpoint}"})  # fmt: skip
        return out

    async def adopt(self, actor_id: int, channel_id: str) -> dict[str, Any]:
        core = self.core
        actor = await core.directory.actor(actor_id)
        if self.redirect_to_stasis is None:
            raise PbxUnavailable("Управление звонками с телефона недоступно: нет связи с AMI")
        found = {x["channel_id"]: x for x in await self.phone_calls(actor_id)}.get(channel_id)
        if found is None:
            raise NoSuchCall("Такого разговора с вашего телефона нет")
        number = found["number"]
        try:
            e164 = normalize(number)
        except PhoneError:
            e164 = number
        (patient_id, name), (dialled, answered) = await asyncio.gather(
            core.store.read(q.patient_by_number, e164), timing.dialled_and_answered(core.ari, channel_id)
        )
        now = utcnow()
        uid = uuid.uuid4().hex[:16]
        core.store.create_call(
            uid=uid,
            direction=DIRECTION_OUTBOUND,
            user_id=actor.id,
            patient_id=patient_id,
            number=e164,
            caller_name=name,
            origin="phone",
            state=STATE_TALKING,
            # the call began when the registrar dialled, not now that he takes it over
            started_at=dialled or now,
            answered_at=answered or now,
            result=RESULT_ANSWERED,
        )
        call = LiveCall(uid, DIRECTION_OUTBOUND, actor.id, e164, patient_id, name, origin="phone")
        call.state = CallState.DIALING  # until both channels are in the bridge
        call.answered_at = answered or now
        call.result = RESULT_ANSWERED
        core.registry.add(call)
        registrar_leg = Leg(channel_id, c.REGISTRAR, found["endpoint"], actor.extension, user_id=actor.id)
        core.registry.track(call, registrar_leg)
        core.registry.track(call, Leg(found["peer_id"], c.REMOTE, "", e164))
        await core.make_bridge(call)
        adopt = {channel_id: f"{uid},registrar", found["peer_id"]: f"{uid},remote"}
        await self.redirect_to_stasis(channel_id, found["peer_id"], adopt)
        core.changed(call)
        return call.snapshot()

    async def leg_in(self, call: LiveCall, leg: Leg, channel: Channel) -> None:
        """A redirected channel entered Stasis: into the bridge; both in: «Разговор»."""
        await self.core.ari.add_to_bridge(call.bridge_id, channel.id)
        if call.state is CallState.DIALING and all(lg.answered for lg in call.active_legs()):
            call.fire(CallEvent.ANSWERED)
            self.core.changed(call)
