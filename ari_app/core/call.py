"""A live call: its legs (Asterisk channels), the bridges it made, and its state (one value
of the call machine, core/machine.py; a transfer under way has its own machine,
transfers/state.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ari_app.core.machine import CALL_MACHINE, CallEvent, CallState, call_next
from clinic.models import CALL_STATES
from clinic.phones import display

if TYPE_CHECKING:
    from ari_app.transfers.state import TransferRun

log = logging.getLogger(__name__)

# leg roles
REGISTRAR = "registrar"  # the registrar in control: leg A, the agent who answered, a transfer's taker
AGENT = "agent"  # a registrar's phone ringing for an incoming call, not answered yet
REMOTE = "remote"  # the patient (or whoever the registrar called / who called in)
THIRD = "third"  # «Конференция»: the added party
TRANSFER = "transfer"  # «Перевод»: the transfer target
FORMER = "former"  # a registrar who handed the call over by a transfer: his leg's end ends nothing
DROPPED = "dropped"  # a phone that rang beside the one that answered (core/ringing.py): hung up

# cause codes (Q.850) → results
CAUSE_BUSY = {17}
CAUSE_NO_ANSWER = {18, 19, 21}  # no user responding, no answer, call rejected


def show_number(number: str) -> str:
    """An E.164 number grouped for reading; an extension as it is."""
    return display(number) if number.startswith("+") else number


def inbound_uid(channel_id: str) -> str:
    """An incoming call's uid comes from its channel's id, so every event of that channel,
    before and after the call is known, lands on the same per-call chain (calls/stasis.py)."""
    return "in" + "".join(ch if ch.isalnum() else "x" for ch in channel_id)[:36]


@dataclass
class Leg:
    channel_id: str
    role: str
    endpoint: str
    label: str  # extension or number, for the window
    user_id: int | None = None  # for registrar/agent legs (and a transfer to a registrar)
    # the phones of one party rung at once (his SIP phone and his softphone): the first leg's
    # channel id, "" for a party with one phone; `won` marks the one that answered
    group: str = ""
    won: bool = False
    answered: bool = False
    gone: bool = False
    cause: int | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        """For the call log's call_legs, written when the call ends."""
        return {
            "channel_id": self.channel_id,
            "role": self.role,
            "endpoint": self.endpoint,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "cause": self.cause,
        }


@dataclass
class LiveCall:
    uid: str
    direction: str
    user_id: int | None  # the registrar in control (and whose log the call is in); None: nobody yet
    number: str
    patient_id: int | None
    caller_name: str = ""
    origin: str = "ui"
    state: CallState = CallState.DIALING
    result: str = ""
    reason: str = ""
    legs: dict[str, Leg] = field(default_factory=dict)
    bridges: set[str] = field(default_factory=set)  # bridges made for this call (deleted at its end)
    recording: str | None = None  # the live recording's name
    recordings: int = 0
    transfer: TransferRun | None = None
    ringing_users: set[int] = field(default_factory=set)  # incoming: registrars whose phones ring
    answered_at: datetime | None = None
    t0: float = field(default_factory=time.monotonic)
    bridged_ms: float | None = None
    seq: int = 0
    marks: dict[str, float] = field(default_factory=dict)  # ms since t0, for the benchmark's breakdown
    target: Any = None  # click-to-call: what to dial once the registrar answers (directory.Target)
    ringback: Any = None  # click-to-call: the timer that starts the ringing tone (TimerHandle)
    on_standby: bool = False  # click-to-call: the registrar's leg is his softphone's standby line
    ringing: Any = None  # click-to-call: the task playing ringback to the registrar
    version: int = 0  # bumped on every published change: browsers drop older snapshots
    number_display: str = ""  # the number as people read it ("+7 916 123-45-67"), set once
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # commands and events, one at a time

    def __post_init__(self) -> None:
        self.number_display = show_number(self.number)

    @property
    def bridge_id(self) -> str:
        return f"c-{self.uid}"

    @property
    def hold_bridge_id(self) -> str:
        return f"h-{self.uid}"

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def check(self, event: CallEvent) -> None:
        """Raise (409, the reason) unless the call's state accepts `event` now."""
        call_next(self.uid, self.state, event, self.reason)

    def fire(self, event: CallEvent) -> CallState:
        """Take the transition `event` (logged); raise as `check` does if refused."""
        call_next(self.uid, self.state, event, self.reason)
        self.state = CALL_MACHINE.step(self.uid, self.state, event)
        return self.state

    def next_channel_id(self, role: str) -> str:
        self.seq += 1
        return f"{self.uid}-{role[:3]}{self.seq}"

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, (time.monotonic() - self.t0) * 1000)

    def live(self, role: str) -> Leg | None:
        for leg in self.legs.values():
            if leg.role == role and not leg.gone:
                return leg
        return None

    def active_legs(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if not leg.gone]

    def parties(self) -> list[dict[str, Any]]:
        """Who is in the call, one entry per party: the phones of one party ringing together
        (core/ringing.py) are one party, a phone dropped beside the one that answered none."""
        out, seen = [], set()
        for leg in self.legs.values():
            if leg.gone or leg.role == DROPPED or (leg.group and leg.group in seen):
                continue
            seen.add(leg.group)
            out.append({"role": leg.role, "label": leg.label, "answered": leg.answered})
        return out

    def snapshot(self) -> dict[str, Any]:
        public = self.state.public
        tr = self.transfer
        return {
            "uid": self.uid,
            "version": self.version,
            "direction": self.direction,
            "user_id": self.user_id,
            "number": self.number,
            "number_display": self.number_display,
            "patient_id": self.patient_id,
            "caller_name": self.caller_name,
            "origin": self.origin,
            "state": public,
            "state_title": CALL_STATES.get(public, public),
            "result": self.result,
            "reason": self.reason,
            "held": self.state in (CallState.HELD, CallState.TRANSFERRING),
            "recording": self.recording is not None,
            "transfer": None if tr is None else tr.snapshot(),
            "parties": self.parties(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "bridged_ms": self.bridged_ms,
            "marks": self.marks,
        }
