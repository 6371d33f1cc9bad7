"""Server-side request limits as Mango enforces them (API §1.4.2-1.4.3).

A sliding one-second window per key: a request is refused when `limit` requests were
already accepted in the second before it. Refused requests do not count. Mango does not say
which window it uses; a sliding one is the strictest reading, so a client that passes here
passes a fixed-window server too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from .clock import Clock


class SlidingWindow:
    def __init__(self, clock: Clock, window: float = 1.0) -> None:
        self._clock = clock
        # Whole nanoseconds: with float seconds, 1.2 - 1.0 < 0.2 and a request exactly one
        # second after another would count as inside its window.
        self._window_ns = round(window * 1e9)
        self._lock = threading.Lock()
        self._hits: dict[str, deque[int]] = {}

    def admit(self, limits: Sequence[tuple[str, int | None]]) -> str | None:
        """Count one request against every (key, limit) and return None, or return the
        first key whose limit is reached, counting nothing. A None limit is no limit."""
        with self._lock:
            now = round(self._clock.monotonic() * 1e9)
            for key, limit in limits:
                if limit is None:
                    continue
                hits = self._hits.setdefault(key, deque())
                while hits and hits[0] <= now - self._window_ns:
                    hits.popleft()
                if len(hits) >= limit:
                    return key
            for key, limit in limits:
                if limit is not None:
                    self._hits[key].append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
