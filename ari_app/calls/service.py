"""Call control: click-to-call, hold, conference, recording, transfers, DTMF, hang-up, the
incoming-call routing with its screen pop, and resync after Asterisk restarts.

Every call is a `LiveCall` (state.py) with its legs keyed by channel id; channel ids are
ours (`<uid>-<role><n>`), so every ARI event finds its call without a lookup in Asterisk.
The conversation happens in one `mixing,dtmf_events` bridge (`c-<uid>`); a held party
waits in a holding bridge (`h-<uid>`) with music on hold, where it hears the music and
nobody hears it.

Commands come from the control API (the registrar's browser via the web app); state
changes come from ARI events through stasis.py. The call log is written through `store`,
the browsers are told through `notifier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ari_app.calls import queries as q
from ari_app.calls import reach, timing
from ari_app.calls import state as st
from ari_app.calls.errors import (
    BadRequest,
    Busy,
    CallEnded,
    CallError,
    Forbidden,
    NoSuchCall,
    PbxUnavailable,
    Unreachable,
)
from ari_app.calls.notifier import Notifier
from ari_app.calls.queries import Actor, Directory
from ari_app.calls.state import LiveCall, Transfer
from ari_app.calls.store import CallStore, StoreError
from ari_app.client import AriClient, AriError, AriNotFound, AriUnavailable
from ari_app.events import Channel
from clinic.channels import pjsip_endpoint
from clinic.models import utcnow
from clinic.models.calls import (
    DIRECTION_INBOUND,
    DIRECTION_OUTBOUND,
    RESULT_ANSWERED,
    RESULT_BUSY,
    RESULT_CANCELLED,
    RESULT_FAILED,
    RESULT_MISSED,
    STATE_CALLING,
    STATE_DIALING,
    STATE_ENDED,
    STATE_HELD,
    STATE_TALKING,
)
from clinic.phones import PhoneError, normalize

log = logging.getLogger(__name__)

_EXTENSION = re.compile(r"^[0-9]{2,8}$")
_DTMF = re.compile(r"^[0-9*#A-D]{1,32}$")


@dataclass(frozen=True)
class Target:
    endpoint: str
    label: str  # extension or E.164 number
    is_extension: bool
    patient_id: int | None = None
    name: str = ""


def _no_trunk(actor: Actor | None) -> str:
    """Only an administrator can set the trunk up: a registrar is sent to him, an
    administrator to the page."""
    where = (
        "настройте её в разделе «Администрирование → Транк»"
        if actor is not None and actor.admin
        else "обратитесь к администратору, чтобы он её настроил"
    )
    return f"Внешняя линия (транк) не настроена, звонки на городские и мобильные номера невозможны: {where}"


def _result_for_cause(cause: int | None) -> str:
    if cause in st.CAUSE_BUSY:
        return RESULT_BUSY
    if cause in st.CAUSE_NO_ANSWER or cause in (0, 16, None):
        return RESULT_MISSED
    return RESULT_FAILED


_REASON = {RESULT_BUSY: "Занято", RESULT_MISSED: "Нет ответа", RESULT_FAILED: "Вызов не удался"}


class CallService:
    def __init__(
        self,
        ari: AriClient,
        store: CallStore,
        notifier: Notifier,
        *,
        registrar_endpoint: str = "PJSIP/{sip_id}",
        number_endpoint: str = "PJSIP/{number}@trunk",
        ring_seconds: int = 30,
        outside_seconds: int = 45,
        # None: the clinic's wall clock from its settings (read where the appointments are)
        clinic_now: Callable[[], datetime] | None = None,
        redirect_to_stasis: Callable[[str, str, dict[str, str]], Awaitable[None]] | None = None,
    ) -> None:
        self.ari = ari
        self.store = store
        self.notifier = notifier
        self.registrar_endpoint = registrar_endpoint
        self.number_endpoint = number_endpoint
        self.ring_seconds = ring_seconds
        self.outside_seconds = outside_seconds
        self.clinic_now = clinic_now
        # AMI Redirect of a channel (+ extra channel) to the convert-to-stasis context
        self.redirect_to_stasis = redirect_to_stasis
        self.calls: dict[str, LiveCall] = {}
        self.by_channel: dict[str, str] = {}
        self.ended: OrderedDict[str, LiveCall] = OrderedDict()  # recent ended calls: 409 with the reason
        self.resyncs = 0
        self._dir: Directory | None = None
        self._dir_at = self._dir_asked = 0.0
        self._dir_refresh: asyncio.Future[Directory] | None = None

    # ------------------------------------------------------------------ helpers

    async def _actor(self, actor_id: int) -> Actor:
        # from the directory click-to-call uses (refreshed every DIRECTORY_TTL seconds): a
        # command costs no database round trip
        asked = time.monotonic()
        actor = (await self._directory()).users.get(actor_id)
        if actor is None:  # perhaps a user added since the last refresh
            actor = (await self._directory(newer_than=asked)).users.get(actor_id)
        if actor is None:
            raise Forbidden("Пользователь не найден или отключён")
        return actor

    async def _target(self, raw: str, actor: Actor | None) -> Target:
        text = (raw or "").strip()
        if not text:
            raise BadRequest("Не указан номер: наберите номер телефона или добавочный")
        if _EXTENSION.match(text):
            user = await self.store.read(q.user_by_extension, text)
            if user is None:
                raise BadRequest(f"Неизвестный добавочный номер {text}")
            if actor is not None and user["id"] == actor.id:
                raise BadRequest("Это ваш собственный добавочный номер")
            endpoint = self.registrar_endpoint.format(sip_id=user["sip_id"])
            await reach.check(self.ari, None, (endpoint, text))
            return Target(endpoint, text, True, name=user["name"])
        try:
            number = normalize(text)
        except PhoneError as exc:
            raise BadRequest(str(exc)) from None
        need_trunk = "@trunk" in self.number_endpoint
        trunk_ok, patient_id, name = await self.store.read(q.number_target, number, need_trunk)
        if not trunk_ok:
            raise BadRequest(_no_trunk(actor))
        return Target(self.number_endpoint.format(number=number), number, False, patient_id, name)

    def _own(self, actor: Actor, uid: str) -> LiveCall:
        call = self.calls.get(uid)
        if call is None:
            gone = self.ended.get(uid)
            if gone is not None:
                if not actor.admin and gone.user_id != actor.id:
                    raise Forbidden("Это не ваш звонок")
                raise CallEnded(f"Звонок уже завершён: {gone.reason or 'вызов окончен'}")
            raise NoSuchCall("Звонок не найден")
        if not actor.admin and call.user_id != actor.id:
            raise Forbidden("Это не ваш звонок")
        if call.ended:
            raise CallEnded(f"Звонок уже завершён: {call.reason or 'вызов окончен'}")
        return call

    async def _ended_in_log(self, uid: str) -> None:
        """A uid not live here: maybe an old call from the log (409), or nothing (404)."""
        found = await self.store.read(q.logged_call, uid)
        if found is not None:
            raise CallEnded(f"Звонок уже завершён: {found[0] or 'вызов окончен'}")

    async def _call_for(self, actor_id: int, uid: str) -> tuple[Actor, LiveCall]:
        actor = await self._actor(actor_id)
        if uid not in self.calls and uid not in self.ended:
            await self._ended_in_log(uid)
        call = self._own(actor, uid)
        if not self.ari.connected.is_set():
            raise PbxUnavailable("Нет связи с АТС (Asterisk): повторите через несколько секунд")
        return actor, call

    def _notify(self, call: LiveCall, kind: str = "call", **extra: Any) -> None:
        call.version += 1
        users = {call.user_id} if call.user_id is not None else set()
        self.notifier.publish(kind, {**call.snapshot(), **extra}, user_ids=users)

    def _track(self, call: LiveCall, leg: st.Leg) -> None:
        call.legs[leg.channel_id] = leg
        self.by_channel[leg.channel_id] = call.uid

    async def _originate(
        self,
        call: LiveCall,
        leg: st.Leg,
        *,
        caller_id: str,
        timeout: int,
        originator: str | None = None,
        app_args: str | None = None,
    ) -> None:
        self._track(call, leg)
        try:
            await self.ari.originate(
                leg.endpoint,
                channel_id=leg.channel_id,
                app_args=app_args or f"c2c,{call.uid},{leg.role}",
                caller_id=caller_id,
                timeout=timeout,
                originator=originator,
            )
        except AriError as exc:
            leg.gone = True
            self.by_channel.pop(leg.channel_id, None)
            log.warning("originate %s failed: %s", leg.endpoint, exc)
            raise

    def _ringback(self, call: LiveCall, channel_id: str) -> None:
        """Ringing tone to the registrar while the patient's phone rings. Not at once: a call
        answered within RINGBACK_AFTER (far shorter than any network's post-dial delay) never
        hears a blip of it, and costs Asterisk no ring + ring_stop."""
        if not call.answered_at and not call.ended and call.live(st.REGISTRAR) is not None:
            call.ringing = asyncio.create_task(self._quiet(self.ari.call("ring", channelId=channel_id)))

    async def _make_bridge(self, call: LiveCall) -> None:
        """The call's conversation bridge (`mixing,dtmf_events`)."""
        call.bridge_made = True  # from the request on: a call ending meanwhile deletes it
        await self.ari.create_bridge(call.bridge_id, name=f"call {call.uid}")

    async def _stop_ringing(self, call: LiveCall, channel_id: str) -> None:
        if call.ringing is not None:
            await call.ringing  # ring_stop must never overtake its ring
        await self._quiet(self.ari.call("ring_stop", channelId=channel_id))

    async def _quiet(self, coro: Awaitable[Any]) -> None:
        """An ARI call whose failure does not matter (the channel may be gone already)."""
        with contextlib.suppress(AriError):
            await coro

    # ------------------------------------------------------------------ commands

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
        t0 = time.monotonic()
        # users, extensions and the trunk from a directory refreshed every few seconds: the
        # checks cost no database round trip on the way to dialling
        try:
            actor, tgt = self._dial_checks(await self._directory(), actor_id, target)
        except (Forbidden, BadRequest):  # perhaps a user or extension added since the last refresh
            actor, tgt = self._dial_checks(await self._directory(newer_than=t0), actor_id, target)
        name = ""
        if patient_id is not None:
            found = await self.store.read(q.patient_name, patient_id)
            if found is None:
                raise BadRequest("Пациент не найден")
            name = found
        elif tgt.is_extension:
            name = tgt.name
        for other in self.calls.values():
            if other.user_id == actor.id and not other.ended and not other.transferred:
                raise Busy("Линия занята: сначала завершите текущий звонок")
        if not self.ari.connected.is_set():
            raise PbxUnavailable("Нет связи с АТС (Asterisk): повторите через несколько секунд")
        own = self.registrar_endpoint.format(sip_id=actor.sip_id)
        # a phone that is not registered is named now, before anything is dialled or logged
        await reach.check(
            self.ari, (own, actor.extension), (tgt.endpoint, tgt.label) if tgt.is_extension else None
        )
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
            lookup = self.store.create_call_for_number(tgt.label, **row)
        else:
            self.store.create_call(**row)
        call = LiveCall(uid, DIRECTION_OUTBOUND, actor.id, tgt.label, patient_id, name, t0=t0)
        call.target = tgt
        self.calls[uid] = call
        if callback_of:
            self._mark_called_back(callback_of, uid)
        leg = st.Leg(call.next_channel_id(st.REGISTRAR), st.REGISTRAR, own, actor.extension, user_id=actor.id)
        call.mark("checked")
        self._notify(call)  # «Набор»: before anything happens in Asterisk
        shown = f"{name or tgt.label} <{tgt.label}>"
        try:
            # only the registrar's phone now: the bridge is made once he answers (Asterisk
            # runs one events socket's requests in turn, and nothing else may delay this one)
            await self._originate(call, leg, caller_id=shown, timeout=self.ring_seconds)
            call.mark("registrar_originated")
        except AriError as exc:
            await self._never_started(call, leg, exc)
        finally:
            if lookup is not None:
                lookup.add_done_callback(lambda done: self._found(call, done))
        return call.snapshot()

    async def _never_started(self, call: LiveCall, leg: st.Leg, exc: AriError) -> None:
        """Asterisk refused to ring the registrar's phone: nothing rang, so the call leaves
        the log (a registrar's log lists calls, not refusals) and the window is told why.
        Raises the reason."""
        log.warning("click-to-call %s: originate %s refused: %s", call.uid, leg.endpoint, exc)
        call.state, call.reason, call.result = STATE_ENDED, "Вызов не состоялся", RESULT_FAILED
        self.calls.pop(call.uid, None)
        self.ended[call.uid] = call
        self._notify(call)
        try:
            await self.store.run(q.discard_call, call.uid)
        except StoreError as err:  # the reason matters more to the registrar than the log
            log.warning("click-to-call %s: the refused call stays in the log: %s", call.uid, err)
        if await reach.registered(self.ari, leg.endpoint) is False:  # unregistered since the check
            raise Unreachable(reach.own_phone_offline(leg.label)) from exc
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
            self._notify(call)

    async def _directory(self, newer_than: float | None = None) -> Directory:
        """Active users and the trunk flag, cached for DIRECTORY_TTL seconds (or read after
        the moment `newer_than`); concurrent callers share one refresh."""
        limit = time.monotonic() - DIRECTORY_TTL if newer_than is None else newer_than
        if self._dir is not None and self._dir_at >= limit:
            return self._dir
        refresh = self._dir_refresh
        if refresh is None or refresh.done() or self._dir_asked < limit:
            self._dir_asked = time.monotonic()
            refresh = self._dir_refresh = asyncio.ensure_future(self._load_directory(self._dir_asked))
            refresh.add_done_callback(_retrieved)  # a failed refresh nobody waited for is no error
        if newer_than is None and self._dir is not None:
            # merely old: this command uses it while the refresh runs (an unknown user or
            # extension asks again with newer_than, and waits)
            return self._dir
        return await asyncio.shield(refresh)

    async def _load_directory(self, asked: float) -> Directory:
        directory = await self.store.read(q.directory)
        if asked >= self._dir_at:  # an older refresh finishing late does not win
            self._dir, self._dir_at = directory, asked
        return directory

    def _dial_checks(self, d: Directory, actor_id: int, target: str) -> tuple[Actor, Target]:
        """Everything click-to-call checks before dialling: the acting user and his phone,
        the target (an extension, or a number and the trunk). Raises CallError."""
        actor = d.users.get(actor_id)
        if actor is None:
            raise Forbidden("Пользователь не найден или отключён")
        if not actor.has_telephony:
            raise BadRequest(
                "У вас не настроен добавочный номер SIP: попросите администратора заполнить "
                "вкладку «IP-телефония» в карточке пользователя"
            )
        text = (target or "").strip()
        if not text:
            raise BadRequest("Не указан номер: наберите номер телефона или добавочный")
        if _EXTENSION.match(text):
            other = d.by_extension.get(text)
            if other is None:
                raise BadRequest(f"Неизвестный добавочный номер {text}")
            if other.id == actor.id:
                raise BadRequest("Это ваш собственный добавочный номер")
            return actor, Target(
                self.registrar_endpoint.format(sip_id=other.sip_id), text, True, name=other.name
            )
        try:
            number = normalize(text)
        except PhoneError as exc:
            raise BadRequest(str(exc)) from None
        if "@trunk" in self.number_endpoint and not d.trunk:
            raise BadRequest(_no_trunk(actor))
        return actor, Target(self.number_endpoint.format(number=number), number, False)

    def _mark_called_back(self, missed_uid: str, new_uid: str) -> None:
        self.store.submit(q.mark_called_back, missed_uid, new_uid)

    async def hold(self, actor_id: int, uid: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        remote = call.live(st.REMOTE)
        if call.state != STATE_TALKING or remote is None or not remote.answered or call.transfer is not None:
            raise Busy("Удержание возможно только во время разговора")
        await self._to_hold(call, remote)
        call.held, call.state = True, STATE_HELD
        self.store.update_call(call.uid, state=STATE_HELD)
        self._notify(call)
        return call.snapshot()

    async def _to_hold(self, call: LiveCall, leg: st.Leg) -> None:
        """Move a party out of the conversation into the holding bridge with music."""
        try:
            await self.ari.call(
                "bridge_create", bridgeId=call.hold_bridge_id, type="holding", name=f"hold {call.uid}"
            )
            call.holding = True
            await self.ari.remove_from_bridge(call.bridge_id, leg.channel_id)
            await self.ari.add_to_bridge(call.hold_bridge_id, leg.channel_id)
            # music to the held party itself (not the bridge's announcer): AMI then reports
            # MusicOnHoldStart on that channel
            await self.ari.call("moh_start", channelId=leg.channel_id, mohClass="default")
        except AriNotFound as exc:
            raise CallEnded("Собеседник уже положил трубку") from exc

    async def _from_hold(self, call: LiveCall, leg: st.Leg) -> None:
        await self._quiet(self.ari.call("moh_stop", channelId=leg.channel_id))
        with contextlib.suppress(AriNotFound):
            await self.ari.remove_from_bridge(call.hold_bridge_id, leg.channel_id)
        try:
            await self.ari.add_to_bridge(call.bridge_id, leg.channel_id)
        except AriNotFound as exc:
            raise CallEnded("Собеседник уже положил трубку") from exc
        await self._quiet(self.ari.destroy_bridge(call.hold_bridge_id))
        call.holding = False

    async def unhold(self, actor_id: int, uid: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        remote = call.live(st.REMOTE)
        if not call.held or remote is None or call.transfer is not None:
            raise Busy("Звонок не на удержании")
        await self._from_hold(call, remote)
        call.held, call.state = False, STATE_TALKING
        self.store.update_call(call.uid, state=STATE_TALKING)
        self._notify(call)
        return call.snapshot()

    async def conference(self, actor_id: int, uid: str, target: str) -> dict[str, Any]:
        actor, call = await self._call_for(actor_id, uid)
        if call.state != STATE_TALKING or call.transfer is not None:
            raise Busy("Конференция возможна только во время разговора")
        if call.live(st.THIRD) is not None:
            raise Busy("В конференции уже три участника")
        tgt = await self._target(target, actor)
        leg = st.Leg(call.next_channel_id(st.THIRD), st.THIRD, tgt.endpoint, tgt.label)
        registrar = call.live(st.REGISTRAR)
        try:
            await self._originate(
                call,
                leg,
                caller_id=f"{actor.name} <{actor.extension}>",
                timeout=self.ring_seconds if tgt.is_extension else self.outside_seconds,
                originator=registrar.channel_id if registrar else None,
            )
        except AriError as exc:
            raise PbxUnavailable("АТС не приняла вызов третьего участника") from exc
        self._notify(call, message=f"Вызов участника конференции {tgt.label}")
        return call.snapshot()

    async def record_start(self, actor_id: int, uid: str) -> dict[str, Any]:
        actor, call = await self._call_for(actor_id, uid)
        if call.state not in (STATE_TALKING, STATE_HELD):
            raise Busy("Запись возможна только во время разговора")
        if call.recording is not None:
            raise Busy("Запись уже идёт")
        call.recordings += 1
        name = f"call-{call.uid}-{call.recordings}"
        try:
            await self.ari.record_bridge(call.bridge_id, name)
        except AriNotFound as exc:
            raise CallEnded("Звонок уже завершён") from exc
        call.recording = name
        self.store.add_recording(call.uid, name, call.patient_id, actor.id)
        self._notify(call)
        return call.snapshot()

    async def record_stop(self, actor_id: int, uid: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        if call.recording is None:
            raise Busy("Запись не идёт")
        name, call.recording = call.recording, None
        await self._quiet(self.ari.stop_recording(name))
        self._notify(call)
        return call.snapshot()

    async def transfer(self, actor_id: int, uid: str, target: str, mode: str) -> dict[str, Any]:
        actor, call = await self._call_for(actor_id, uid)
        if mode not in ("blind", "attended"):
            raise BadRequest("Вид перевода: blind (сразу) или attended (с консультацией)")
        remote = call.live(st.REMOTE)
        if call.state != STATE_TALKING or remote is None or not remote.answered:
            raise Busy("Перевод возможен только во время разговора")
        if call.transfer is not None:
            raise Busy("Перевод уже выполняется")
        tgt = await self._target(target, actor)
        registrar = call.live(st.REGISTRAR)
        await self._to_hold(call, remote)
        leg = st.Leg(call.next_channel_id(st.TRANSFER), st.TRANSFER, tgt.endpoint, tgt.label)
        call.transfer = Transfer(mode, leg.channel_id, tgt.label)
        call.state = STATE_HELD
        try:
            await self._originate(
                call,
                leg,
                caller_id=f"{call.caller_name or call.number} <{call.number}>",
                timeout=self.ring_seconds if tgt.is_extension else self.outside_seconds,
                originator=remote.channel_id,
            )
        except AriError as exc:
            call.transfer = None
            await self._from_hold(call, remote)
            call.state = STATE_TALKING
            raise PbxUnavailable("АТС не приняла вызов абонента перевода") from exc
        if mode == "blind" and registrar is not None:
            # the registrar is done: the patient waits with music until the target answers
            call.transferred = True
            await self._quiet(self.ari.hangup(registrar.channel_id))
        self.store.update_call(call.uid, state=STATE_HELD)
        self._notify(call)
        return call.snapshot()

    async def transfer_complete(self, actor_id: int, uid: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        tr = call.transfer
        if tr is None or tr.mode != "attended":
            raise Busy("Нет перевода с консультацией")
        if not tr.answered:
            raise Busy("Абонент перевода ещё не ответил")
        remote = call.live(st.REMOTE)
        registrar = call.live(st.REGISTRAR)
        if remote is None:
            raise CallEnded("Собеседник уже положил трубку")
        call.transferred = True
        if registrar is not None:
            await self._quiet(self.ari.remove_from_bridge(call.bridge_id, registrar.channel_id))
        await self._from_hold(call, remote)
        if registrar is not None:
            await self._quiet(self.ari.hangup(registrar.channel_id))
        call.transfer, call.held, call.state = None, False, STATE_TALKING
        call.reason = f"Переведён на {tr.label}"
        self.store.update_call(call.uid, state=STATE_TALKING, reason=call.reason)
        self._notify(call)
        return call.snapshot()

    async def transfer_cancel(self, actor_id: int, uid: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        tr = call.transfer
        if tr is None or call.transferred:
            raise Busy("Нет перевода, который можно отменить")
        await self._cancel_transfer(call, "Перевод отменён")
        return call.snapshot()

    async def _cancel_transfer(self, call: LiveCall, message: str) -> None:
        tr = call.transfer
        if tr is None:
            return
        call.transfer = None
        target = call.legs.get(tr.channel_id)
        if target is not None and not target.gone:
            await self._quiet(self.ari.hangup(target.channel_id))
        remote = call.live(st.REMOTE)
        if remote is not None:
            with contextlib.suppress(CallError):
                await self._from_hold(call, remote)
        call.held, call.state = False, STATE_TALKING
        self.store.update_call(call.uid, state=STATE_TALKING)
        self._notify(call, message=message)

    async def hangup(self, actor_id: int, uid: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        if call.answered_at:
            result = RESULT_ANSWERED
        else:  # the registrar gave up his own call; an incoming one nobody took was missed
            result = RESULT_CANCELLED if call.direction == DIRECTION_OUTBOUND else RESULT_MISSED
        await self._end(call, result, "Завершён регистратором")
        return call.snapshot()

    async def dtmf(self, actor_id: int, uid: str, digits: str) -> dict[str, Any]:
        _, call = await self._call_for(actor_id, uid)
        if not _DTMF.match(digits or ""):
            raise BadRequest("Тоновый набор: только цифры 0–9, * и # (до 32 знаков)")
        remote = call.live(st.REMOTE)
        if remote is None or not remote.answered or call.held:
            raise Busy("Тоновый набор возможен только во время разговора")
        try:
            await self.ari.call(
                "send_dtmf", channelId=remote.channel_id, dtmf=digits, between=100, duration=120
            )
        except AriNotFound as exc:
            raise CallEnded("Собеседник уже положил трубку") from exc
        return call.snapshot()

    def list_for(self, actor: Actor) -> list[dict[str, Any]]:
        return [
            c.snapshot()
            for c in self.calls.values()
            if not c.ended and (actor.admin or c.user_id == actor.id or actor.id in c.ringing_users)
        ]

    async def get(self, actor_id: int, uid: str) -> dict[str, Any]:
        actor = await self._actor(actor_id)
        if uid in self.ended:
            call = self.ended[uid]
            if not actor.admin and call.user_id != actor.id:
                raise Forbidden("Это не ваш звонок")
            return call.snapshot()
        if uid not in self.calls:
            raise NoSuchCall("Звонок не найден")
        call = self.calls[uid]
        if not actor.admin and call.user_id != actor.id:
            raise Forbidden("Это не ваш звонок")
        return call.snapshot()

    # -------------------------------------------------- calls from the registrar's own phone

    async def phone_calls(self, actor_id: int) -> list[dict[str, Any]]:
        """The registrar's calls placed from his SIP phone that run in the dialplan (not
        under our control yet)."""
        actor = await self._actor(actor_id)
        if not actor.has_telephony:
            return []
        channels = await self.ari.channels()
        by_name = {c.name: c for c in channels}
        out = []
        for ch in channels:
            if (
                pjsip_endpoint(ch.name) != actor.sip_id
                or ch.app_name == "Stasis"
                or ch.state != "Up"
            ):
                continue
            if ch.id in self.by_channel:
                continue
            with contextlib.suppress(AriError):
                peer_name = await self.ari.get_var(ch.id, "BRIDGEPEER")
                peer = by_name.get(peer_name)
                if peer is not None:
                    # dialled out through the trunk: the number is the dialplan's extension
                    number = (
                        ch.exten
                        if ch.context.startswith("clinic-outbound")
                        else (peer.caller_number or ch.exten)
                    )
                    out.append({"channel_id": ch.id, "peer_id": peer.id, "number": number})
        return out

    async def adopt(self, actor_id: int, channel_id: str) -> dict[str, Any]:
        """Take a call from the registrar's own phone under control: both channels are
        redirected (AMI) into the Stasis app and bridged there (Wazo's convert_to_stasis)."""
        actor = await self._actor(actor_id)
        if self.redirect_to_stasis is None:
            raise PbxUnavailable("Управление звонками с телефона недоступно: нет связи с AMI")
        mine = {c["channel_id"]: c for c in await self.phone_calls(actor_id)}
        found = mine.get(channel_id)
        if found is None:
            raise NoSuchCall("Такого разговора с вашего телефона нет")
        number = found["number"]
        try:
            e164 = normalize(number)
        except PhoneError:
            e164 = number
        (patient_id, name), (dialled, answered) = await asyncio.gather(
            self.store.read(q.patient_by_number, e164), timing.dialled_and_answered(self.ari, channel_id)
        )
        now = utcnow()
        uid = uuid.uuid4().hex[:16]
        self.store.create_call(
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
        call = LiveCall(
            uid,
            DIRECTION_OUTBOUND,
            actor.id,
            e164,
            patient_id,
            name,
            origin="phone",
            state=STATE_DIALING,
        )
        call.answered_at = answered or now
        self.calls[uid] = call
        reg = st.Leg(channel_id, st.REGISTRAR, f"PJSIP/{actor.sip_id}", actor.extension, user_id=actor.id)
        rem = st.Leg(found["peer_id"], st.REMOTE, "", e164)
        self._track(call, reg)
        self._track(call, rem)
        await self._make_bridge(call)
        await self.redirect_to_stasis(
            channel_id, found["peer_id"], {channel_id: f"{uid},registrar", found["peer_id"]: f"{uid},remote"}
        )
        self._notify(call)
        return call.snapshot()

    # ------------------------------------------------------------------ incoming calls

    async def on_inbound(self, channel: Channel, did: str) -> None:
        number = channel.caller_number
        try:
            e164 = normalize(number)
        except PhoneError:
            e164 = number
        patient_id: int | None = None
        with contextlib.suppress(AriError, ValueError):
            raw = await self.ari.get_var(channel.id, "PATIENT_ID")
            patient_id = int(raw) if raw.strip() else None
        now = self.clinic_now() if self.clinic_now is not None else None
        users, summary = await self.store.read(q.inbound_parties, did, patient_id, e164, now)
        name = summary["name"] if summary else (channel.caller_name if channel.caller_name != number else "")
        uid = inbound_uid(channel.id)
        self.store.create_call(
            uid=uid,
            direction=DIRECTION_INBOUND,
            user_id=None,
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
            state=STATE_CALLING,
        )
        self.calls[uid] = call
        caller = st.Leg(channel.id, st.REMOTE, channel.name, e164)
        self._track(call, caller)
        if not users:
            await self._end(call, RESULT_MISSED, "Нет регистраторов с настроенной телефонией")
            return
        await self._quiet(self.ari.call("ring", channelId=channel.id))
        await self._make_bridge(call)
        pop = {
            "uid": uid,
            "number": e164,
            "number_display": st.show_number(e164),
            "patient": summary,
            "caller_name": name,
        }
        for user in users:
            leg = st.Leg(
                call.next_channel_id(st.AGENT),
                st.AGENT,
                self.registrar_endpoint.format(sip_id=user["sip_id"]),
                user["extension"],
                user_id=user["id"],
            )
            try:
                await self._originate(
                    call,
                    leg,
                    caller_id=f"{name or e164} <{number}>",
                    timeout=self.ring_seconds,
                    app_args=f"agent,{uid}",
                    originator=channel.id,
                )
            except AriError:
                continue
            call.ringing_users.add(user["id"])
            # the screen pop: only the registrar whose phone rings
            self.notifier.publish("incoming", pop, user_ids={user["id"]}, everyone=False)
        if not call.ringing_users:
            await self._end(call, RESULT_MISSED, "Телефоны регистраторов недоступны")

    def _withdraw_pop(self, call: LiveCall, user_ids: set[int], reason: str) -> None:
        if user_ids:
            self.notifier.publish(
                "incoming_end", {"uid": call.uid, "reason": reason}, user_ids=user_ids, everyone=False
            )
        call.ringing_users -= user_ids

    # ------------------------------------------------------------------ ARI events

    async def on_answered(self, channel: Channel, uid: str, role: str) -> None:
        """StasisStart of a leg we originated (it answered) or redirected in."""
        call = self.calls.get(uid)
        leg = call.legs.get(channel.id) if call else None
        if call is None or leg is None or call.ended:
            await self._quiet(self.ari.hangup(channel.id))
            return
        leg.answered = True
        call.mark(f"{leg.role}_answered")
        leg.answered_at = utcnow()
        if call.origin == "phone":
            await self.ari.add_to_bridge(call.bridge_id, channel.id)
            if all(leg.answered for leg in call.active_legs()):
                call.state = STATE_TALKING
                self._notify(call)
            return
        if leg.role == st.REGISTRAR and call.direction == DIRECTION_OUTBOUND:
            call.state = STATE_CALLING
            self._notify(call)
            tgt: Target = call.target
            remote = st.Leg(call.next_channel_id(st.REMOTE), st.REMOTE, tgt.endpoint, tgt.label)
            # the patient's phone first, then the bridge (ready long before anyone answers);
            # the registrar waits outside it: both join it in one request when the patient
            # answers
            try:
                await asyncio.gather(
                    self._originate(
                        call,
                        remote,
                        caller_id=f"{leg.label} <{leg.label}>",
                        timeout=self.ring_seconds if tgt.is_extension else self.outside_seconds,
                        originator=channel.id,
                    ),
                    self._make_bridge(call),
                )
            except AriError as exc:
                log.warning("click-to-call %s: %r", call.uid, exc)
                offline = tgt.is_extension and await reach.registered(self.ari, tgt.endpoint) is False
                why = reach.phone_offline(tgt.label) if offline else "АТС не приняла вызов абонента"
                await self._end(call, RESULT_FAILED, why)
                return
            if not call.answered_at and not call.ended:
                call.ringback = asyncio.get_running_loop().call_later(
                    RINGBACK_AFTER, self._ringback, call, channel.id
                )
        elif leg.role == st.REMOTE:
            if call.ringback is not None:
                call.ringback.cancel()
            registrar = call.live(st.REGISTRAR)
            joining = [registrar.channel_id, channel.id] if registrar is not None else [channel.id]
            await self.ari.add_to_bridge(call.bridge_id, *joining)
            if registrar is not None and call.ringing is not None:
                asyncio.create_task(self._stop_ringing(call, registrar.channel_id))
            await self._answered(call)
        elif leg.role == st.AGENT:
            if call.live(st.REGISTRAR) is not None:  # another registrar was quicker
                await self._quiet(self.ari.hangup(channel.id))
                return
            leg.role = st.REGISTRAR
            call.user_id = leg.user_id
            caller = call.live(st.REMOTE)
            if caller is None:
                await self._end(call, RESULT_MISSED, "Пациент положил трубку")
                return
            await self._quiet(self.ari.call("answer", channelId=caller.channel_id))
            caller.answered = True
            await self.ari.add_to_bridge(call.bridge_id, caller.channel_id, channel.id)
            others = {
                lg.user_id for lg in call.active_legs() if lg.role == st.AGENT and lg.user_id is not None
            }
            for other in [lg for lg in call.active_legs() if lg.role == st.AGENT]:
                await self._quiet(self.ari.hangup(other.channel_id))
            self._withdraw_pop(call, others, "Ответил другой регистратор")
            call.ringing_users.discard(leg.user_id or 0)
            self.store.update_call(call.uid, user_id=call.user_id)
            await self._answered(call)
        elif leg.role == st.THIRD:
            await self.ari.add_to_bridge(call.bridge_id, channel.id)
            self._notify(call, message=f"Участник {leg.label} в конференции")
        elif leg.role == st.TRANSFER:
            tr = call.transfer
            if tr is None or tr.channel_id != channel.id:
                await self._quiet(self.ari.hangup(channel.id))
                return
            tr.answered = True
            await self.ari.add_to_bridge(call.bridge_id, channel.id)
            if tr.mode == "blind":
                remote = call.live(st.REMOTE)
                if remote is not None:
                    await self._from_hold(call, remote)
                call.transfer, call.held, call.state = None, False, STATE_TALKING
                call.reason = f"Переведён на {tr.label}"
                self.store.update_call(call.uid, state=STATE_TALKING, reason=call.reason)
            self._notify(call)

    async def _answered(self, call: LiveCall) -> None:
        call.state, call.result = STATE_TALKING, RESULT_ANSWERED
        call.answered_at = utcnow()
        call.bridged_ms = (time.monotonic() - call.t0) * 1000
        call.mark("bridged")
        self.store.update_call(
            call.uid, state=STATE_TALKING, result=RESULT_ANSWERED, answered_at=call.answered_at
        )
        self._notify(call)

    async def on_channel_gone(self, channel_id: str, cause: int | None) -> None:
        uid = self.by_channel.pop(channel_id, None)
        call = self.calls.get(uid or "")
        if call is None:
            return
        leg = call.legs.get(channel_id)
        if leg is None or leg.gone:
            return
        leg.gone, leg.cause = True, cause
        leg.ended_at = utcnow()
        if call.ended:
            return
        if leg.role == st.AGENT:
            self._withdraw_pop(call, {leg.user_id} if leg.user_id else set(), "Вызов снят")
            if not any(lg.role == st.AGENT for lg in call.active_legs()) and call.live(st.REGISTRAR) is None:
                await self._end(call, RESULT_MISSED, "Никто из регистраторов не ответил")
            return
        if leg.role == st.REGISTRAR:
            if call.transferred:
                return
            if not leg.answered:
                # his own phone never took the call: nobody else was called
                await self._end(
                    call,
                    RESULT_CANCELLED,
                    "Телефон регистратора не ответил"
                    if cause not in st.CAUSE_BUSY
                    else "Телефон регистратора занят",
                )
            else:
                await self._end(call, call.result or RESULT_ANSWERED, "Регистратор положил трубку")
            return
        if leg.role == st.REMOTE:
            if not leg.answered and call.direction == DIRECTION_OUTBOUND:
                result = _result_for_cause(cause)
                await self._end(call, result, _REASON[result])
            elif call.direction == DIRECTION_INBOUND and call.answered_at is None:
                self._withdraw_pop(call, set(call.ringing_users), "Пациент положил трубку")
                await self._end(call, RESULT_MISSED, "Пациент положил трубку, не дождавшись ответа")
            else:
                await self._end(call, call.result or RESULT_ANSWERED, "Собеседник положил трубку")
            return
        if leg.role == st.TRANSFER and call.transfer is not None and call.transfer.channel_id == channel_id:
            if call.transfer.mode == "blind" or call.transferred:
                await self._end(
                    call,
                    call.result or RESULT_ANSWERED,
                    f"Перевод на {call.transfer.label} не удался: нет ответа",
                )
            else:
                await self._cancel_transfer(call, f"Абонент перевода {call.transfer.label} не ответил")
            return
        if leg.role == st.THIRD and not leg.answered:
            self._notify(call, message=f"Участник {leg.label} не ответил")
            return
        # an answered party left: the call goes on while two parties remain
        if len([lg for lg in call.active_legs() if lg.answered]) < 2:
            await self._end(call, call.result or RESULT_ANSWERED, "Собеседник положил трубку")
        else:
            self._notify(call)

    async def on_dtmf(self, channel_id: str, digit: str) -> None:
        call = self.calls.get(self.by_channel.get(channel_id, ""))
        if call is not None and call.user_id is not None:
            leg = call.legs.get(channel_id)
            self.notifier.publish(
                "dtmf",
                {"uid": call.uid, "digit": digit, "role": leg.role if leg else ""},
                user_ids={call.user_id},
            )

    async def on_recording_done(self, name: str, ok: bool, duration: int | None) -> None:
        await self.store.finish_recording(name, "done" if ok else "failed", duration)
        for call in list(self.calls.values()) + list(self.ended.values()):
            if call.recording == name:
                call.recording = None
                self._notify(call)

    async def _end(self, call: LiveCall, result: str, reason: str) -> None:
        if call.ended:
            return
        if call.reason.startswith("Переведён"):
            reason = f"{call.reason}; {reason}"
        call.state, call.reason = STATE_ENDED, reason
        call.result = call.result if call.result == RESULT_ANSWERED else result
        if call.ringback is not None:
            call.ringback.cancel()
        if call.recording is not None:
            name, call.recording = call.recording, None
            await self._quiet(self.ari.stop_recording(name))
        for leg in call.active_legs():
            await self._quiet(self.ari.hangup(leg.channel_id))
        if call.bridge_made:
            await self._quiet(self.ari.destroy_bridge(call.bridge_id))
        if call.holding:
            await self._quiet(self.ari.destroy_bridge(call.hold_bridge_id))
        self._withdraw_pop(call, set(call.ringing_users), reason)
        await self.store.end_call(
            call.uid,
            legs=[leg.row() for leg in call.legs.values()],
            state=STATE_ENDED,
            result=call.result,
            reason=reason,
            ended_at=utcnow(),
        )
        self.calls.pop(call.uid, None)
        self.ended[call.uid] = call
        while len(self.ended) > 500:
            self.ended.popitem(last=False)
        self._notify(call)

    # ------------------------------------------------------------------ resync

    async def resync(self) -> list[str]:
        """After every (re)connection of the events socket: calls whose channels no longer
        exist in Asterisk are closed in the log; bridges of calls we no longer know go."""
        try:
            channels = {c.id for c in await self.ari.channels()}
            bridges = await self.ari.bridges()
        except AriUnavailable:
            return []
        reason = "Связь с АТС прервалась (перезапуск Asterisk): звонок завершён"
        closed = []
        for call in list(self.calls.values()):
            alive = [leg for leg in call.active_legs() if leg.channel_id in channels]
            for leg in call.active_legs():
                if leg.channel_id not in channels:
                    leg.gone = True
                    self.by_channel.pop(leg.channel_id, None)
            if len(alive) < (2 if call.answered_at else 1):
                closed.append(call.uid)
                await self._end(call, RESULT_ANSWERED if call.answered_at else RESULT_FAILED, reason)
        closed += await self.store.close_stale(set(self.calls), reason)
        for bridge in bridges:
            uid = bridge.id[2:]
            if bridge.id[:2] in ("c-", "h-") and uid not in self.calls:
                await self._quiet(self.ari.destroy_bridge(bridge.id))
        if closed:
            log.info("resync closed %d calls: %s", len(closed), closed)
        self.resyncs += 1  # completed resyncs
        return closed


DIRECTORY_TTL = 2.0  # seconds a user or trunk change may take to reach click-to-call
RINGBACK_AFTER = 0.4  # seconds from dialling the patient to the registrar's ringing tone


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def inbound_uid(channel_id: str) -> str:
    """An incoming call's uid comes from its channel's id, so every event of that channel,
    before and after the call is known, lands on the same per-call chain (stasis.py)."""
    return "in" + "".join(ch if ch.isalnum() else "x" for ch in channel_id)[:36]
