"""Call events for the web side: one queue per subscriber (an SSE stream of the control
API). A registrar's stream carries his own calls and the screen pop of calls ringing his
phone; nobody else's. An `all` subscriber (admins' call monitor, the benchmark) sees every
call event."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Subscriber:
    user_id: int | None  # None: every call
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))


class Notifier:
    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()

    def subscribe(self, user_id: int | None) -> Subscriber:
        sub = Subscriber(user_id)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def publish(self, kind: str, data: dict[str, Any], *, user_ids: set[int], everyone: bool = True) -> None:
        """Send to the subscribers of `user_ids`; `everyone` also reaches `all` subscribers."""
        message = {"event": kind, "data": data}
        for sub in list(self._subs):
            if (sub.user_id is None and everyone) or (sub.user_id is not None and sub.user_id in user_ids):
                with contextlib.suppress(asyncio.QueueFull):  # a stuck browser loses events, not us
                    sub.queue.put_nowait(message)

    @property
    def count(self) -> int:
        return len(self._subs)
