"""Client-side throttling so we stay under Mango's documented request rates.

Documented limits (API §1.4.2-1.4.3): 10 requests/s per product for the VPBX API, and 5/s
for creating a task in the Contact-Center API. Whether that 5/s also covers /vpbx/task/add is
not stated; we assume it does (mango.md §5.4), which costs a 300-appointment clinic about a
minute. Mango answers 429 or 5008 when a limit is exceeded; the client backs off then, but
pacing ourselves is cheaper than being refused.
"""

from __future__ import annotations

import threading
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


class RateLimiter:
    """One bucket for all requests plus one per path that has its own limit."""

    def __init__(self, limits: Mapping[str, float] | None = None, clock: Clock | None = None) -> None:
        clock = clock or SystemClock()
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._buckets = {path: TokenBucket(rate, clock=clock) for path, rate in self.limits.items()}

    def acquire(self, path: str) -> float:
        """Wait for the global bucket, then for the path's own one; return the total wait."""
        waited = 0.0
        for key in ("*", path.strip("/")):
            bucket = self._buckets.get(key)
            if bucket is not None:
                waited += bucket.acquire()
        return waited
