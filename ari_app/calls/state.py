"""The explicit state of a live call: its legs (Asterisk channels), bridges and flags."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clinic.models import CALL_STATES
from clinic.models.calls import STATE_ENDED
from clinic.phones import display

# leg roles
REGISTRAR = "registrar"  # the registrar's phone (click-to-call leg A, or the agent who answered)
AGENT = "agent"  # a registrar's phone ringing for an incoming call, not answered yet
REMOTE = "remote"  # the patient (or whoever the registrar called / who called in)
THIRD = "third"  # «Конференция»: the added party
TRANSFER = "transfer"  # «Перевод»: the transfer target

# cause codes (Q.850) → results
CAUSE_BUSY = {17}
CAUSE_NO_ANSWER = {18, 19, 21}  # no user responding, no answer, call rejected


def show_number(number: str) -> str:
    """An E.164 number grouped for reading; an extension as it is."""
    return display(number) if number.startswith("+") else number


@dataclass
class Leg:
    channel_id: str
    role: str
    endpoint: str
    label: str  # extension or number, for the window
    user_id: int | None = None  # for registrar/agent legs
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
class Transfer:
    mode: str  # blind | attended
    channel_id: str
    label: str
    answered: bool = False


@dataclass
class LiveCall:
    uid: str
    direction: str
    user_id: int | None
    number: str
    patient_id: int | None
    caller_name: str = ""
    origin: str = "ui"
    state: str = "dialing"
    result: str = ""
    reason: str = ""
    legs: dict[str, Leg] = field(default_factory=dict)
    held: bool = False
    bridge_made: bool = False  # the conversation bridge exists
    holding: bool = False  # the holding bridge exists
    recording: str | None = None
    recordings: int = 0
    transfer: Transfer | None = None
    transferred: bool = False  # the registrar handed the call over and left
    ringing_users: set[int] = field(default_factory=set)
    answered_at: datetime | None = None
    t0: float = field(default_factory=time.monotonic)
    bridged_ms: float | None = None
    seq: int = 0
    marks: dict[str, float] = field(default_factory=dict)  # ms since t0, for the benchmark's breakdown
    target: Any = None  # click-to-call: what to dial once the registrar answers (service.Target)
    ringback: Any = None  # click-to-call: the timer that starts the ringing tone (TimerHandle)
    ringing: Any = None  # click-to-call: the task playing ringback to the registrar
    version: int = 0  # bumped on every published change: browsers drop older snapshots
    number_display: str = ""  # the number as people read it ("+7 916 123-45-67"), set once

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
        return self.state == STATE_ENDED

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

    def snapshot(self) -> dict[str, Any]:
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
            "state": self.state,
            "state_title": CALL_STATES.get(self.state, self.state),
            "result": self.result,
            "reason": self.reason,
            "held": self.held,
            "recording": self.recording is not None,
            "transfer": None
            if self.transfer is None
            else {
                "mode": self.transfer.mode,
                "target": self.transfer.label,
                "answered": self.transfer.answered,
            },
            "parties": [
                {"role": leg.role, "label": leg.label, "answered": leg.answered}
                for leg in self.legs.values()
                if not leg.gone
            ],
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "bridged_ms": self.bridged_ms,
            "marks": self.marks,
        }
