"""The emulator's time source for its rate-limit windows and lockouts.

Kept here rather than taken from clinic.mango so that the emulator imports nothing of the
client (tests/test_emulators_independent.py). Any object with `monotonic()` will do, so a
test can hand the client and the emulator one shared manual clock.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...


@runtime_checkable
class AdjustableClock(Protocol):
    """A clock that `POST /_emulator/clock` may move (this module's or a test's own)."""

    def monotonic(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Moves only when told to. Whole nanoseconds, so that 0.2 s steps add up to exactly
    one second and a request on the edge of a one-second window lands on the edge."""

    def __init__(self, start: float = 0.0) -> None:
        self._ns = round(start * 1e9)
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._ns / 1e9

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._ns += round(seconds * 1e9)
