"""The own voice robot on Asterisk: the dialer loop and each robot call's explicit state.

Outbound: every tick the dialer claims the due phones within the channel limit (clinic/
voice_robot/dialer.py commits an attempt row first), renders the phone's prompt (TTS, cached
per text; the generic prompt when synthesis fails) and originates `robot,<attempt>` through
the trunk. Answered → the prompt plays; 1 confirms, 2 cancels (clinic/voice_robot/answers.py,
the Mango robot's rules), 0 hands the patient to the registrars exactly as an incoming call
(IncomingService.on_inbound: every free registrar rings, the screen pop shows him); no digit
within N s, a hang-up, busy or no answer → the dialer's retries and escalation.

Inbound: [clinic-inbound] sends a known caller to `robot-inbound,<DID>` before the
registrars' queue. With upcoming appointments he hears them and may press 1 or 2; 0,
silence or nothing to ask → `continue` to the dialplan's next step, the registrars.

    RINGING → MENU → (digit 1/2) CLOSING → ended
                   → (digit 0) handed to the registrars
                   → (silence / hang-up) ended
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ari_app.client import AriError
from ari_app.core.core import CallCore
from ari_app.events import Channel
from ari_app.incoming.service import IncomingService
from clinic.clock import clinic_zone
from clinic.models.voice_robot import (
    OUT_BUSY,
    OUT_CANCELLED,
    OUT_CONFIRMED,
    OUT_FAILED,
    OUT_HANGUP,
    OUT_NO_ANSWER,
    OUT_NO_DTMF,
    OUT_OPERATOR,
    OUT_STALE,
)
from clinic.services.settings import read_settings
from clinic.voice_robot import dialer, prompts
from clinic.voice_robot import settings as robot_settings
from clinic.voice_robot.answers import (
    DIGIT_STATUS,
    SOURCE_INBOUND,
    SOURCE_OUTBOUND,
    Asked,
    apply_answer,
    upcoming_for_caller,
)
from clinic.voice_robot.tts import Tts, TtsError

log = logging.getLogger(__name__)

OUTBOUND = "robot"
INBOUND = "robot-inbound"
MAX_UNKNOWN = 2  # wrong keys before the call counts as not answered
CAUSE_BUSY = 17
NO_ANSWER_CAUSES = frozenset({16, 18, 19, 21})  # before an answer: nobody picked up


def utcnow() -> datetime:
    return datetime.now(UTC)


class Phase(enum.Enum):
    RINGING = "ringing"
    MENU = "menu"
    CLOSING = "closing"  # the answer is written; the last words play, then hang up
    ENDED = "ended"


@dataclass
class RobotSetup:
    """What the robot needs beside call control; None in CallControl: no robot."""

    sessions: sessionmaker[Session]
    tts: Tts
    clock: Callable[[], datetime] = utcnow  # aware UTC; tests move it forward
    tick: float = 1.0  # seconds between dialer rounds
    number_endpoint: str = "PJSIP/{number}@trunk"
    enabled: bool = True  # the dialer loop (inbound confirmation works regardless)


@dataclass
class RobotCall:
    channel_id: str
    kind: str  # OUTBOUND / INBOUND
    phase: Phase = Phase.RINGING
    attempt_id: int | None = None
    phone: str = ""
    did: str = ""
    asked: tuple[Asked, ...] = ()
    started_at: datetime | None = None
    media: str = ""  # the prompt (ARI media URI)
    dtmf_seconds: int = 8
    digits: str = ""
    unknown: int = 0
    playback_id: str = ""
    playbacks: int = 0
    timer: asyncio.TimerHandle | None = None
    channel: Channel | None = None
    originated: bool = False  # the originate request went out (its channel may exist)
    claimed_at: float = field(default_factory=time.monotonic)  # the line is the robot's from here
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def next_playback(self) -> str:
        self.playbacks += 1
        self.playback_id = f"pb-{self.channel_id}-{self.playbacks}"
        return self.playback_id


class RobotService:
    def __init__(self, core: CallCore, incoming: IncomingService, setup: RobotSetup) -> None:
        self.core = core
        self.incoming = incoming
        self.setup = setup
        self.sessions = setup.sessions
        self.tts = setup.tts
        self.clock = setup.clock
        self.calls: dict[str, RobotCall] = {}  # by channel id
        self._wake = asyncio.Event()
        self._claim_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.placed: list[tuple[str, int]] = []  # (phone, round) as dialled: tests and the benchmark
        self.spans: list[tuple[float, float]] = []  # each outbound call: claimed → line free (monotonic)

    # ------------------------------------------------------------------ the dialer

    def start(self) -> None:
        if self.setup.enabled and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="robot-dialer")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None

    def wake(self) -> None:
        """A campaign started or the clock moved: look for due calls now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("robot dialer round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.setup.tick)
            self._wake.clear()

    def _db(self, work: Callable[[Session], Any]) -> Any:
        with self.sessions() as session, session.begin():
            return work(session)

    async def step(self) -> int:
        """One dialer round: deadlines, then the due calls within the limit. Returns the
        number of calls placed."""
        if not self.core.ari.connected.is_set():
            return 0  # Asterisk away: nothing is claimed, the campaign waits
        now = self.clock()
        busy = await self._trunk_busy()

        # the robot's lines: its calls until their channel is gone (an attempt row is done
        # once the answer is written, while the last words still play)
        own = sum(1 for c in self.calls.values() if c.kind == OUTBOUND)

        def claim(session: Session) -> tuple[list[dialer.CallPlan], str]:
            dialer.sweep(session, now)
            plans = dialer.claim(session, now, busy_elsewhere=busy, robot_live=own)
            return plans, read_settings(session).trunk_callerid

        # claimed and registered as one step: a resync meanwhile would take an attempt
        # claimed but not yet known here for one an earlier process left behind
        async with self._claim_lock:
            plans, caller_id = await asyncio.to_thread(self._db, claim)
            for plan in plans:
                call = RobotCall(
                    plan.channel_id,
                    OUTBOUND,
                    attempt_id=plan.attempt_id,
                    phone=plan.phone,
                    asked=plan.asked,
                    started_at=plan.started_at,
                    dtmf_seconds=plan.dtmf_seconds,
                )
                self.calls[call.channel_id] = call
                self._spawn(self._place(call, plan, caller_id))
        return len(plans)

    async def _trunk_busy(self) -> int:
        """Trunk channels that are not the robot's: registrars' calls, whether driven by
        call control or dialled from their own phones. Asterisk unreadable: call control's
        live calls stand in."""
        try:
            channels = await self.core.ari.channels()
        except AriError:
            return sum(1 for call in self.core.registry.calls.values() if not call.ended)
        trunk = self.setup.number_endpoint.partition("@")[2] or "trunk"
        prefix = f"PJSIP/{trunk}-"
        own = {c.channel_id for c in self.calls.values() if c.kind == OUTBOUND}
        return sum(1 for ch in channels if ch.name.startswith(prefix) and ch.id not in own)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prompt(self, text: str, kind: str, generic: str) -> tuple[str, str]:
        """(media, "tts" | "generic") for `text`; the generic prompt when TTS fails."""
        try:
            return self.tts.media(await asyncio.to_thread(self.tts.render, text)), "tts"
        except TtsError as exc:
            log.warning("robot: TTS failed, the generic prompt plays: %s", exc)
            return self.tts.media(await asyncio.to_thread(self.tts.generic, kind, generic)), "generic"

    async def _place(self, call: RobotCall, plan: dialer.CallPlan, caller_id: str) -> None:
        call.media, prompt = await self._prompt(plan.text, "generic", prompts.GENERIC)
        call.digits = prompt  # kept until answered: which prompt was used
        if self.calls.get(call.channel_id) is not call:
            return  # settled by a resync while the prompt was made: never dialled
        self.placed.append((plan.phone, plan.round))
        call.originated = True
        try:
            await self.core.ari.originate(
                self.setup.number_endpoint.format(number=plan.phone),
                channel_id=plan.channel_id,
                app_args=f"{OUTBOUND},{plan.attempt_id}",
                caller_id=caller_id,
                timeout=plan.ring_seconds,
            )
        except AriError as exc:
            log.warning("robot: originate to %s refused: %s", plan.phone, exc)
            async with call.lock:
                await self._end(call, OUT_FAILED, note=str(exc)[:300])
            return
        await asyncio.to_thread(self._db, lambda s: dialer.ringing(s, plan.attempt_id))

    # ------------------------------------------------------------------ ARI events

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.calls

    def claim_start(self, channel: Channel, args: list[str]) -> RobotCall | None:
        """A StasisStart of ours: the call object (made now for an inbound one)."""
        kind = args[0] if args else ""
        if kind == INBOUND:
            call = RobotCall(
                channel.id,
                INBOUND,
                did=args[1] if len(args) > 1 else "",
                channel=channel,
                phone=channel.caller_number,
                started_at=self.clock(),
            )
            self.calls[channel.id] = call
            return call
        return self.calls.get(channel.id)

    async def on_start(self, call: RobotCall, channel: Channel) -> None:
        call.channel = channel
        if call.kind == INBOUND:
            await self._inbound(call, channel)
            return
        if call.phase is not Phase.RINGING:
            return
        prompt = call.digits
        call.digits = ""
        call.phase = Phase.MENU
        now = self.clock()
        attempt_id = call.attempt_id
        await asyncio.to_thread(self._db, lambda s: dialer.answered(s, attempt_id or 0, now, prompt))
        await self._play(call, call.media)

    async def _inbound(self, call: RobotCall, channel: Channel) -> None:
        now = self.clock()

        def lookup(session: Session) -> tuple[list[prompts.Visit], tuple[Asked, ...], str]:
            local_now = now.astimezone(clinic_zone(session)).replace(tzinfo=None)
            appts = upcoming_for_caller(session, channel.caller_number, local_now)
            visits = [dialer.visit_of(a) for a in appts]
            return (
                visits,
                tuple(Asked(a.id, a.starts_at) for a in appts),
                prompts.inbound(visits, local_now.date()),
            )

        try:
            cfg = await asyncio.to_thread(self._db, robot_settings.read)
            on, call.dtmf_seconds = cfg.inbound_confirm, cfg.dtmf_seconds
            visits, asked, text = await asyncio.to_thread(self._db, lookup) if on else ([], (), "")
        except Exception:
            log.exception("robot: inbound lookup failed; the call goes to the registrars")
            visits, asked, text = [], (), ""
        if not visits:  # switched off, nothing to ask, or the lookup failed: as today
            await self._to_registrars_inbound(call)
            return
        call.asked = asked
        call.media, _ = await self._prompt(text, "generic_inbound", prompts.GENERIC_INBOUND)
        try:
            await self.core.ari.call("answer", channelId=channel.id)
        except AriError:
            await self._finish_local(call)
            return
        call.phase = Phase.MENU
        await self._play(call, call.media)

    async def _play(self, call: RobotCall, *media: str) -> None:
        self._cancel_timer(call)
        try:
            await self.core.ari.call(
                "play",
                channelId=call.channel_id,
                media=",".join(media),
                lang="ru",
                playbackId=call.next_playback(),
            )
        except AriError as exc:  # the patient hung up meanwhile: ChannelDestroyed follows
            log.info("robot: play on %s failed: %s", call.channel_id, exc)

    async def on_playback_finished(self, call: RobotCall, playback_id: str) -> None:
        if playback_id != call.playback_id:
            return  # an earlier prompt stopped by a key
        if call.phase is Phase.MENU:
            loop = asyncio.get_running_loop()
            call.timer = loop.call_later(call.dtmf_seconds, self._silence, call)
        elif call.phase is Phase.CLOSING:
            await self.core.quiet(self.core.ari.hangup(call.channel_id))

    def _silence(self, call: RobotCall) -> None:
        call.timer = None
        self._spawn(self._on_silence(call))

    async def _on_silence(self, call: RobotCall) -> None:
        async with call.lock:
            if call.phase is not Phase.MENU:
                return
            if call.kind == INBOUND:  # silence: the registrars, as today
                await self._to_registrars_inbound(call)
                return
            await self._end(call, OUT_NO_DTMF, hang_up=True, note="Нет нажатия клавиши")

    async def on_dtmf(self, call: RobotCall, digit: str) -> None:
        if call.phase is not Phase.MENU:
            return
        call.digits += digit
        self._cancel_timer(call)
        if call.playback_id:
            await self.core.quiet(self.core.ari.call("playback_stop", playbackId=call.playback_id))
        if digit in DIGIT_STATUS:
            await self._answer(call, DIGIT_STATUS[digit])
        elif digit == "0":
            if call.kind == INBOUND:
                await self._to_registrars_inbound(call)
            else:
                await self._to_registrars(call)
        else:
            call.unknown += 1
            if call.unknown > MAX_UNKNOWN:
                if call.kind == INBOUND:
                    await self._to_registrars_inbound(call)
                else:
                    await self._end(call, OUT_NO_DTMF, hang_up=True, note=f"Неверные клавиши: {call.digits}")
                return
            wrong, _ = await self._prompt(prompts.UNKNOWN_DIGIT, "generic", "")
            await self._play(call, wrong, call.media)

    async def _answer(self, call: RobotCall, status: int) -> None:
        now = self.clock()
        source = SOURCE_OUTBOUND if call.kind == OUTBOUND else SOURCE_INBOUND
        ref = (
            f"Робот, звонок №{call.attempt_id}"
            if call.kind == OUTBOUND
            else f"Робот, входящий {call.channel_id}"
        )

        def write(session: Session) -> str:
            answer = apply_answer(
                session,
                list(call.asked),
                status,
                source=source,
                asked_at=call.started_at or now,
                now=now,
                phone=call.phone,
                ref=ref,
            )
            outcome = OUT_STALE if answer.all_stale else (OUT_CONFIRMED if status == 1 else OUT_CANCELLED)
            if call.attempt_id is not None:
                dialer.finish(session, call.attempt_id, outcome, now, digits=call.digits, answer=answer)
            return outcome

        try:
            outcome = await asyncio.to_thread(self._db, write)
        except Exception:
            log.exception("robot: writing the answer failed")
            outcome = OUT_STALE
        call.phase = Phase.CLOSING
        words = {OUT_CONFIRMED: prompts.CONFIRMED, OUT_CANCELLED: prompts.CANCELLED}.get(
            outcome, prompts.STALE
        )
        media, _ = await self._prompt(words, "generic", "")
        await self._play(call, media)

    async def _to_registrars(self, call: RobotCall) -> None:
        """0: the patient is handed to the registrars as an incoming call is (every free
        registrar rings, the screen pop names him); from now on the call is call control's."""
        now = self.clock()
        attempt_id = call.attempt_id or 0
        did = await asyncio.to_thread(self._db, lambda s: read_settings(s).trunk_callerid or "robot")
        await asyncio.to_thread(
            self._db, lambda s: dialer.finish(s, attempt_id, OUT_OPERATOR, now, digits=call.digits)
        )
        self._release(call)
        channel = replace(call.channel or Channel(call.channel_id), caller_number=call.phone, caller_name="")
        await self.incoming.on_inbound(channel, [did])

    async def _to_registrars_inbound(self, call: RobotCall) -> None:
        """The caller goes on to the dialplan's next step: the registrars' queue."""
        self._release(call)
        await self.core.quiet(self.core.ari.call("continue", channelId=call.channel_id))

    def _release(self, call: RobotCall) -> None:
        self._cancel_timer(call)
        call.phase = Phase.ENDED
        if self.calls.pop(call.channel_id, None) is not None:
            if call.kind == OUTBOUND:
                self.spans.append((call.claimed_at, time.monotonic()))
            self.wake()  # a channel is free: the next due call goes out now, not at the next tick

    async def on_gone(self, call: RobotCall, cause: int) -> None:
        """The channel is gone: before an answer busy / no answer, after it a hang-up."""
        if call.phase is Phase.RINGING:
            outcome = (
                OUT_BUSY
                if cause == CAUSE_BUSY
                else OUT_NO_ANSWER
                if cause in NO_ANSWER_CAUSES
                else OUT_FAILED
            )
            await self._end(call, outcome, note=f"cause {cause}")
        elif call.phase is Phase.MENU:
            await self._end(call, OUT_HANGUP, note="Положил трубку до ответа")
        else:
            await self._finish_local(call)

    async def _end(self, call: RobotCall, outcome: str, *, hang_up: bool = False, note: str = "") -> None:
        was_ringing = call.phase is Phase.RINGING
        self._release(call)
        if call.kind == OUTBOUND and call.attempt_id is not None:
            now = self.clock()
            attempt_id = call.attempt_id
            digits = "" if was_ringing else call.digits
            await asyncio.to_thread(
                self._db, lambda s: dialer.finish(s, attempt_id, outcome, now, digits=digits, note=note)
            )
        if hang_up:
            await self.core.quiet(self.core.ari.hangup(call.channel_id))

    async def _finish_local(self, call: RobotCall) -> None:
        self._release(call)

    def _cancel_timer(self, call: RobotCall) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None

    # ------------------------------------------------------------------ restarts

    async def resync(self) -> list[int]:
        """After (re)connecting to Asterisk: the robot's calls whose channels are gone
        (Asterisk restarted) end as interrupted, never redialled in this round; channels of
        ours nobody drives any more (ari_app restarted) are hung up."""
        try:
            alive = {ch.id for ch in await self.core.ari.channels()}
        except AriError:
            return []
        async with self._claim_lock:
            for channel_id in list(self.calls):
                call = self.calls[channel_id]
                if channel_id not in alive and call.kind == OUTBOUND and call.originated:
                    self._release(call)  # died with Asterisk: no event will come
            driven = set(self.calls)
            for channel_id in alive - driven:
                if channel_id.startswith("robot-"):
                    await self.core.quiet(self.core.ari.hangup(channel_id))
            now = self.clock()
            settled: list[int] = await asyncio.to_thread(self._db, lambda s: dialer.recover(s, now, driven))
        if settled:
            log.info("robot: %d interrupted calls settled after a reconnect", len(settled))
        self.wake()
        return settled

    def live(self) -> int:
        return len(self.calls)

    def status(self) -> dict[str, Any]:
        return {
            "live": len(self.calls),
            "placed": len(self.placed),
            "phases": {c.channel_id: c.phase.value for c in self.calls.values()},
            "t": time.monotonic(),
        }
