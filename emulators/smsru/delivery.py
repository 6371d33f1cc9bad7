"""Delivery progression: each accepted message walks 100 → 101 → 102 → final code on the
emulator clock, and every step becomes an ``sms_status`` callback record (smsru.md §10).

The plan is fixed when the message is accepted (steps and outcome from the options then);
:meth:`DeliveryPlanner.due` hands out the steps whose time has come, in time order, even
when the clock jumped over several at once, so callbacks carry each step's own time.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from emulators.smsru.options import EmulatorOptions
from emulators.smsru.state import Message

TTL_EXPIRED = 104


@dataclass(frozen=True, order=True)
class Step:
    at: float
    seq: int
    sms_id: str
    code: int


def plan(message: Message, options: EmulatorOptions) -> list[tuple[float, int]]:
    """The (time, code) steps of one message; the TTL cuts it short with 104."""
    first, second, third = options.delivery_steps
    outcome = options.delivery_outcomes.get(message.phone, options.default_outcome)
    start = message.start_at
    steps = [(start + first, 101), (start + first + second, 102), (start + first + second + third, outcome)]
    if message.ttl:
        deadline = start + message.ttl * 60
        if steps[-1][0] > deadline:
            steps = [(at, code) for at, code in steps[:2] if at < deadline] + [(deadline, TTL_EXPIRED)]
    return steps


class DeliveryPlanner:
    """Not thread-safe by itself: the Emulator calls it under its lock."""

    def __init__(self) -> None:
        self._heap: list[Step] = []
        self._seq = itertools.count()

    def schedule(self, message: Message, options: EmulatorOptions) -> None:
        for at, code in plan(message, options):
            heapq.heappush(self._heap, Step(at, next(self._seq), message.sms_id, code))

    def due(self, now: float) -> list[Step]:
        steps = []
        while self._heap and self._heap[0].at <= now:
            steps.append(heapq.heappop(self._heap))
        return steps

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)
