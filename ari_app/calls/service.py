"""The calls feature (Wazo's `calls` plugin): a call as a whole — look it up, list the ones
in a registrar's window, «Завершить», DTMF to the patient, what happens when a leg goes (the
roles no other feature claims), the patient's DTMF to the window, and the resync after
every (re)connection to Asterisk."""

from __future__ import annotations

import logging
import re
from typing import Any

from ari_app.calls.queries import Actor
from ari_app.client import AriNotFound, AriUnavailable
from ari_app.core import call as c
from ari_app.core.call import Leg, LiveCall, inbound_uid
from ari_app.core.core import CallCore
from ari_app.core.errors import BadRequest, CallEnded, Forbidden, NoSuchCall
from ari_app.core.machine import CallEvent
from clinic.models import utcnow
from clinic.models.calls import (
    DIRECTION_INBOUND,
    DIRECTION_OUTBOUND,
    RESULT_ANSWERED,
    RESULT_BUSY,
    RESULT_CANCELLED,
    RESULT_FAILED,
    RESULT_MISSED,
)

__all__ = ["CallsService", "inbound_uid"]

log = logging.getLogger(__name__)

_DTMF = re.compile(r"^[0-9*#A-D]{1,32}$")
_REASON = {RESULT_BUSY: "Занято", RESULT_MISSED: "Нет ответа", RESULT_FAILED: "Вызов не удался"}


def result_for_cause(cause: int | None) -> str:
    if cause in c.CAUSE_BUSY:
        return RESULT_BUSY
    if cause in c.CAUSE_NO_ANSWER or cause in (0, 16, None):
        return RESULT_MISSED
    return RESULT_FAILED


class CallsService:
    def __init__(self, core: CallCore) -> None:
        self.core = core
        self.resyncs = 0

    # ------------------------------------------------------------------ commands

    async def actor(self, actor_id: int) -> Actor:
        return await self.core.directory.actor(actor_id)

    async def visible_to(self, actor_id: int) -> list[dict[str, Any]]:
        """The calls in this user's window (his own and those ringing his phone; admins: all)."""
        return self.core.registry.visible_to(await self.actor(actor_id))

    async def get(self, actor_id: int, uid: str) -> dict[str, Any]:
        actor = await self.actor(actor_id)
        call = self.core.registry.find(uid)
        if call is None:
            raise NoSuchCall("Звонок не найден")
        if not actor.admin and call.user_id != actor.id:
            raise Forbidden("Это не ваш звонок")
        return call.snapshot()

    async def hangup(self, actor_id: int, uid: str) -> dict[str, Any]:
        async with self.core.command(actor_id, uid, CallEvent.HANGUP) as (_, call):
            if call.answered_at:
                result = RESULT_ANSWERED
            else:  # the registrar gave up his own call; an incoming one nobody took was missed
                result = RESULT_CANCELLED if call.direction == DIRECTION_OUTBOUND else RESULT_MISSED
            await self.core.end(call, result, "Завершён регистратором")
            return call.snapshot()

    async def dtmf(self, actor_id: int, uid: str, digits: str) -> dict[str, Any]:
        if not _DTMF.match(digits or ""):
            raise BadRequest("Тоновый набор: только цифры 0–9, * и # (до 32 знаков)")
        async with self.core.command(actor_id, uid, CallEvent.DTMF) as (_, call):
            remote = call.live(c.REMOTE)
            if remote is None or not remote.answered:
                raise CallEnded("Собеседник уже положил трубку")
            try:
                await self.core.ari.call(
                    "send_dtmf", channelId=remote.channel_id, dtmf=digits, between=100, duration=120
                )
            except AriNotFound as exc:
                raise CallEnded("Собеседник уже положил трубку") from exc
            return call.snapshot()

    # ------------------------------------------------------------------ ARI events

    async def leg_gone(self, call: LiveCall, leg: Leg, cause: int | None) -> None:
        """The default when a leg goes (roles no feature claims: the registrar, the patient,
        an answered third party or transfer target)."""
        core = self.core
        if leg.role == c.FORMER:
            return  # he handed the call over: it goes on without him
        if leg.role == c.REGISTRAR:
            if not leg.answered:
                # his own phone never took the call: nobody else was called
                why = (
                    "Телефон регистратора занят"
                    if cause in c.CAUSE_BUSY
                    else "Телефон регистратора не ответил"
                )
                await core.end(call, RESULT_CANCELLED, why)
            else:
                await core.end(call, call.result or RESULT_ANSWERED, "Регистратор положил трубку")
            return
        if leg.role == c.REMOTE:
            if not leg.answered and call.direction == DIRECTION_OUTBOUND:
                result = result_for_cause(cause)
                await core.end(call, result, _REASON[result])
            elif call.direction == DIRECTION_INBOUND and call.answered_at is None:
                await core.end(call, RESULT_MISSED, "Пациент положил трубку, не дождавшись ответа")
            else:
                await core.end(call, call.result or RESULT_ANSWERED, "Собеседник положил трубку")
            return
        # an answered party left: the call goes on while two parties remain
        if len([lg for lg in call.active_legs() if lg.answered]) < 2:
            await core.end(call, call.result or RESULT_ANSWERED, "Собеседник положил трубку")
        else:
            core.changed(call)

    def mark_gone(self, call: LiveCall, leg: Leg, cause: int | None) -> None:
        leg.gone, leg.cause = True, cause
        leg.ended_at = utcnow()

    async def on_dtmf(self, channel_id: str, digit: str) -> None:
        uid = self.core.registry.uid_of(channel_id)
        call = self.core.registry.live(uid or "")
        if call is not None:
            leg = call.legs.get(channel_id)
            self.core.notifier.dtmf(call, digit, leg.role if leg else "")

    # ------------------------------------------------------------------ resync

    async def resync(self) -> list[str]:
        """After every (re)connection of the events socket: calls whose channels no longer
        exist in Asterisk are closed in the log; bridges of calls we no longer know go."""
        core, registry = self.core, self.core.registry
        try:
            channels = {ch.id for ch in await core.ari.channels()}
            bridges = await core.ari.bridges()
        except AriUnavailable:
            return []
        reason = "Связь с АТС прервалась (перезапуск Asterisk): звонок завершён"
        closed = []
        for call in list(registry.calls.values()):
            async with call.lock:
                if call.ended:
                    continue
                alive = [leg for leg in call.active_legs() if leg.channel_id in channels]
                for leg in call.active_legs():
                    if leg.channel_id not in channels:
                        leg.gone = True
                        registry.untrack(leg.channel_id)
                if len(alive) < (2 if call.answered_at else 1):
                    closed.append(call.uid)
                    await core.end(call, RESULT_ANSWERED if call.answered_at else RESULT_FAILED, reason)
        closed += await core.store.close_stale(set(registry.calls), reason)
        for bridge in bridges:
            uid = bridge.id[2:]
            if bridge.id[:2] in ("c-", "h-") and uid not in registry.calls:
                await core.quiet(core.ari.destroy_bridge(bridge.id))
        if closed:
            log.info("resync closed %d calls: %s", len(closed), closed)
        self.resyncs += 1  # completed resyncs
        return closed
