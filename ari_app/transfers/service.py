"""Transfers (Wazo's transfers plugin, app-driven). The patient waits on hold while the
target is originated (`c2c,<uid>,transfer`).

Blind: the registrar's leg is hung up at once and the call is no longer his; when the
target answers, the patient joins him. Attended: the registrar and the target talk in the
call's bridge; «Завершить перевод» hangs the registrar up and brings the patient in,
«Отменить» hangs the target up and brings the patient back.

Either way, once the target has the patient the first registrar no longer controls the
call (his window frees the line, his list drops it, his commands are refused) and the call
belongs to the registrar behind the target extension: his window, his list, his call log.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ari_app.calls.queries import Actor
from ari_app.client import AriError, AriNotFound
from ari_app.core import call as c
from ari_app.core import ringing
from ari_app.core.call import Leg, LiveCall
from ari_app.core.core import CallCore
from ari_app.core.errors import BadRequest, CallEnded, CallError, InvalidState, PbxUnavailable
from ari_app.core.machine import CallEvent
from ari_app.core.routes import Gone
from ari_app.directory import reach
from ari_app.events import Channel
from ari_app.transfers.state import TransferEvent, TransferRun
from clinic.call_control import TransferMode
from clinic.models.calls import RESULT_ANSWERED, STATE_HELD, STATE_TALKING

log = logging.getLogger(__name__)


class TransfersService:
    def __init__(self, core: CallCore, fallback: Gone) -> None:
        self.core = core
        self.fallback = fallback  # what a leg's end does once no transfer is under way

    async def transfer(self, actor_id: int, uid: str, target: str, mode: str) -> dict[str, Any]:
        try:
            kind = TransferMode(mode or TransferMode.BLIND)
        except ValueError:
            raise BadRequest("Вид перевода: blind (сразу) или attended (с консультацией)") from None
        core = self.core
        async with core.command(actor_id, uid, CallEvent.TRANSFER) as (actor, call):
            remote = call.live(c.REMOTE)
            if remote is None or not remote.answered:
                raise CallEnded("Собеседник уже положил трубку")
            tgt = await core.directory.target(actor, target)
            endpoints = tgt.endpoints
            if tgt.is_extension:  # only his registered phones ring (both, if both are)
                _, endpoints = await reach.check(core.ari, None, reach.Phones(tgt.endpoints, tgt.label))
            registrar = call.live(c.REGISTRAR)
            handed = f"Переведён на {tgt.label}"
            await core.to_hold(call, remote)
            legs = ringing.legs_for(call, c.TRANSFER, endpoints, tgt.label, user_id=tgt.user_id)
            # the run follows the target's phones as one party: its channel id is the group's
            call.transfer = TransferRun(
                call.uid, kind, ringing.group_key(legs[0]), tgt.label, tgt.user_id, call.user_id
            )
            call.fire(CallEvent.TRANSFER)
            try:
                await ringing.ring_all(
                    core,
                    call,
                    legs,
                    caller_id=f"{call.caller_name or call.number} <{call.number}>",
                    timeout=core.timeouts.for_target(tgt.is_extension),
                    originator=remote.channel_id,
                )
            except AriError as exc:
                call.transfer = None
                await core.from_hold(call, remote)
                call.fire(CallEvent.TRANSFER_BACK)
                raise PbxUnavailable("АТС не приняла вызов абонента перевода") from exc
            core.store.update_call(call.uid, state=STATE_HELD)
            if kind is TransferMode.BLIND and registrar is not None:
                # the registrar is done: the patient waits with music until the target answers
                registrar.role = c.FORMER
                core.hand_over(call, None, handed)
                await core.quiet(core.ari.hangup(registrar.channel_id))
            core.changed(call)
            return self._view(call, actor, handed)

    async def complete(self, actor_id: int, uid: str) -> dict[str, Any]:
        core = self.core
        async with core.command(actor_id, uid, CallEvent.TRANSFER_DONE) as (actor, call):
            tr = self._run(call, "Нет перевода с консультацией")
            tr.check(TransferEvent.COMPLETE)
            remote = call.live(c.REMOTE)
            if remote is None:
                raise CallEnded("Собеседник уже положил трубку")
            registrar = call.live(c.REGISTRAR)
            if registrar is not None:
                registrar.role = c.FORMER  # his leg's end no longer ends the call
                await core.quiet(core.ari.remove_from_bridge(call.bridge_id, registrar.channel_id))
            await core.from_hold(call, remote)
            if registrar is not None:
                await core.quiet(core.ari.hangup(registrar.channel_id))
            tr.fire(TransferEvent.COMPLETE)
            self._taken(call, tr)
            return self._view(call, actor, call.reason)

    async def cancel(self, actor_id: int, uid: str) -> dict[str, Any]:
        async with self.core.command(actor_id, uid, CallEvent.TRANSFER_BACK) as (_, call):
            tr = self._run(call, "Нет перевода, который можно отменить")
            tr.fire(TransferEvent.CANCEL)
            await self._back(call, tr, "Перевод отменён")
            return call.snapshot()

    @staticmethod
    def _run(call: LiveCall, refusal: str) -> TransferRun:
        if call.transfer is None:
            raise InvalidState(refusal)
        return call.transfer

    def _view(self, call: LiveCall, actor: Actor, reason: str) -> dict[str, Any]:
        """The answer to the registrar who transferred: once the call is not his, it is over
        for his window (as the event his stream got says)."""
        if call.user_id != actor.id and not actor.admin:
            return self.core.notifier.released_view(call, reason)
        return call.snapshot()

    def _taken(self, call: LiveCall, tr: TransferRun) -> None:
        """The target has the patient: the call is «Разговор» again, and the target's."""
        call.transfer = None
        call.fire(CallEvent.TRANSFER_DONE)
        call.reason = f"Переведён на {tr.label}"
        self.core.store.update_call(call.uid, state=STATE_TALKING, reason=call.reason)
        self.core.hand_over(call, tr.user_id, call.reason)
        self.core.changed(call)

    async def _back(self, call: LiveCall, tr: TransferRun, message: str) -> None:
        """The transfer did not happen: the target's leg goes, the patient is back with the
        registrar."""
        core = self.core
        call.transfer = None
        for target in call.active_legs():  # the target's phone(s)
            if ringing.group_key(target) == tr.channel_id:
                await core.quiet(core.ari.hangup(target.channel_id))
        remote = call.live(c.REMOTE)
        if remote is not None:
            with contextlib.suppress(CallError):
                await core.from_hold(call, remote)
        call.fire(CallEvent.TRANSFER_BACK)
        core.store.update_call(call.uid, state=STATE_TALKING)
        core.changed(call, message=message)

    # ------------------------------------------------------------------ ARI events

    async def target_answered(self, call: LiveCall, leg: Leg, channel: Channel) -> None:
        core = self.core
        tr = call.transfer
        if tr is None or tr.channel_id != ringing.group_key(leg):
            await core.quiet(core.ari.hangup(channel.id))
            return
        tr.check(TransferEvent.TARGET_ANSWERED)
        try:
            await core.ari.add_to_bridge(call.bridge_id, channel.id)
        except AriNotFound:
            # it hung up as it answered: its ChannelDestroyed, next on this call's chain,
            # fails the transfer (target_gone) from «ringing»
            log.info("call %s: transfer target %s gone before joining", call.uid, channel.id)
            return
        tr.fire(TransferEvent.TARGET_ANSWERED)
        if tr.mode is TransferMode.BLIND:
            remote = call.live(c.REMOTE)
            if remote is not None:
                await core.from_hold(call, remote)
            self._taken(call, tr)
        else:
            core.changed(call)

    async def target_gone(self, call: LiveCall, leg: Leg, cause: int | None) -> None:
        tr = call.transfer
        if tr is None or tr.channel_id != ringing.group_key(leg):
            await self.fallback(call, leg, cause)  # the taker of a completed transfer hung up
            return
        tr.fire(TransferEvent.TARGET_GONE)
        if tr.mode is TransferMode.BLIND:
            await self.core.end(
                call, call.result or RESULT_ANSWERED, f"Перевод на {tr.label} не удался: нет ответа"
            )
        else:
            await self._back(call, tr, f"Абонент перевода {tr.label} не ответил")
