"""Time sources for rate limiting and back-off.

The client takes a clock instead of calling `time` directly so that tests can drive the
rate limiter and the back-off without sleeping for real. (The emulator has its own,
emulators/mango/clock.py, and accepts this one in tests.)
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to; `sleep` advances it instead of waiting.

    Time is kept in whole nanoseconds so that repeated steps such as 0.2 s add up exactly
    (five of them are exactly 1.0 s); float accumulation could otherwise put a request a
    hair inside a one-second window that it is really on the edge of. Sleeps round to the
    nearest nanosecond: a wait computed as 0.20000000000000004 s must land on 0.2 s, or the
    rate limiter's next slot (counted from the ideal time) would come 1 ns "early".
    """

    def __init__(self, start: float = 0.0) -> None:
        self._ns = round(start * 1e9)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []  # every sleep asked for, for tests to inspect

    def monotonic(self) -> float:
        with self._lock:
            return self._ns / 1e9

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._ns += round(seconds * 1e9)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._ns += round(seconds * 1e9)
