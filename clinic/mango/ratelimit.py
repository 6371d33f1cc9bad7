"""Client-side throttling so we stay under Mango's documented request rates.

Documented limits (API §1.4.2-1.4.3): 10 requests/s per product for the VPBX API, and 5/s
for creating a task in the Contact-Center API. Whether that 5/s also covers /vpbx/task/add is
not stated; we assume it does (mango.md §5.4), which costs a 300-appointment clinic about a
minute. Mango answers 429 or 5008 when a limit is exceeded; the client backs off then, but
pacing ourselves is cheaper than being refused.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping

from .clock import Clock, SystemClock

# Per-path limits in requests per second; "*" applies to every request.
DEFAULT_LIMITS: Mapping[str, float] = {"*": 10.0, "task/add": 5.0}


class TokenBucket:
    """A thread-safe token bucket that hands out reservations.

    `capacity` is the burst size. The default of 1 spaces requests evenly at 1/rate: Mango
    does not say whether its "10 per second" is a fixed or sliding window, and a full burst
    followed by a refill could put up to twice the rate into one sliding second.

    A caller reserves the next free slot under the lock and then sleeps outside it, so
    concurrent callers are served in arrival order and never wake up together.
    """

    def __init__(self, rate: float, capacity: float = 1.0, clock: Clock | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._tokens = capacity
        self._last = self._clock.monotonic()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def reserve(self) -> float:
        """Take a token, possibly one not yet earned; return how long to wait before using it."""
        with self._lock:
            self._refill(self._clock.monotonic())
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block (on the bucket's clock) until a token is ours; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def try_acquire(self) -> bool:
        """Take a token only if one is available now."""
        with self._lock:
            self._refill(self._clock.monotonic())
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class SlidingWindowGuard:
    """At most `limit` requests in any `window` seconds, counted at the moment each one
    leaves, which is what the server sees (give or take the network).

    The token bucket spaces reservations evenly, but a thread that wakes late from its
    sleep still sends, and the next thread on time right after it; and a pause of the
    whole process (a full garbage collection took 100-300 ms in bench/mango.py) holds a
    request that was already let through. Either way a few requests leave close together
    and a strict sliding window at Mango's end counts one too many (seen: 51 in one second
    at a paced 47.5/s). So an admission is stamped when it is granted and again when the
    request really goes (`RateLimiter.mark_sent`), and the next one waits for the window
    measured from those stamps; a window a little longer than Mango's second absorbs the
    jitter between our clock and theirs.
    """

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._window_ns = round(window * 1e9)
        self._clock = clock
        # one mutable cell [ns] per admission, so a late send can move its own stamp
        self._admitted: deque[list[int]] = deque(maxlen=limit)

    def wait_needed(self, now_ns: int) -> int:
        """Nanoseconds until one more admission fits (0: now). Caller holds the lock."""
        if len(self._admitted) < self.limit:
            return 0
        oldest = min(cell[0] for cell in self._admitted)
        return max(0, oldest + self._window_ns - now_ns + 1)

    def admit(self, now_ns: int) -> list[int]:
        cell = [now_ns]
        self._admitted.append(cell)
        return cell


class RateLimiter:
    """One bucket for all requests plus one per path that has its own limit, each with a
    sliding-window guard.

    `limits` are the documented rates. `margin` paces the buckets that much under them
    (Mango's window is unknown; see robot.systems), and `guard` lengthens the window the
    guards count in, so that Mango's strict one-second window never sees more than the
    limit even when our requests reach it a little unevenly.
    """

    def __init__(
        self,
        limits: Mapping[str, float] | None = None,
        clock: Clock | None = None,
        *,
        margin: float = 1.0,
        guard: float = 0.0,
    ) -> None:
        if not 0 < margin <= 1:
            raise ValueError("margin must be in (0, 1]")
        self._clock = clock or SystemClock()
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._buckets = {
            path: TokenBucket(rate * margin, clock=self._clock) for path, rate in self.limits.items()
        }
        self._guards = {
            path: SlidingWindowGuard(max(1, math.floor(rate)), 1.0 + guard, self._clock)
            for path, rate in self.limits.items()
        }
        self._lock = threading.Lock()
        self._local = threading.local()

    def acquire(self, path: str) -> float:
        """Wait for the global bucket, then for the path's own one, then until the guards
        admit the request; return the total wait."""
        keys = [key for key in ("*", path.strip("/")) if key in self._buckets]
        waited = 0.0
        for key in keys:
            waited += self._buckets[key].acquire()
        while True:
            with self._lock:
                now_ns = round(self._clock.monotonic() * 1e9)
                wait_ns = max((self._guards[key].wait_needed(now_ns) for key in keys), default=0)
                if wait_ns == 0:
                    self._local.cells = [self._guards[key].admit(now_ns) for key in keys]
                    return waited
            self._clock.sleep(wait_ns / 1e9)
            waited += wait_ns / 1e9

    def mark_sent(self) -> None:
        """The request this thread was last admitted for is leaving now: restamp it."""
        cells = getattr(self._local, "cells", None)
        if not cells:
            return
        with self._lock:
            now_ns = round(self._clock.monotonic() * 1e9)
            for cell in cells:
                cell[0] = max(cell[0], now_ns)
        self._local.cells = None
