"""How ARI events reach the features: each feature's stasis module registers what it does
when one of its legs answers (enters Stasis) or goes, by the leg's role, and what starts a
call of its own (`inbound`). The router (calls/stasis.py) finds the call, takes its lock
and calls the handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ari_app.core.call import Leg, LiveCall
from ari_app.events import Channel, Event

Answered = Callable[[LiveCall, Leg, Channel], Awaitable[None]]
Gone = Callable[[LiveCall, Leg, "int | None"], Awaitable[None]]
Starts = Callable[[Channel, list[str]], Awaitable[None]]
RecordingDone = Callable[[str, bool, "int | None"], Awaitable[None]]


class EventHandler(Protocol):
    """What takes every ARI event: call control's router, or a feature that takes its own
    channels' events first and passes the rest on (robot/, standby/)."""

    async def handle(self, event: Event) -> None: ...


@dataclass
class StasisRoutes:
    answered: dict[str, Answered] = field(default_factory=dict)  # by leg role (or "adopt")
    gone: dict[str, Gone] = field(default_factory=dict)  # by leg role; others: the calls feature's default
    starts: dict[str, Starts] = field(default_factory=dict)  # by the first Stasis argument
    recording_done: list[RecordingDone] = field(default_factory=list)

    def on_answered(self, role: str, handler: Answered) -> None:
        assert role not in self.answered, role
        self.answered[role] = handler

    def on_gone(self, role: str, handler: Gone) -> None:
        assert role not in self.gone, role
        self.gone[role] = handler
