"""The emulator's notion of now: the wall clock plus an offset tests can advance.

A "manual" clock starts frozen (at `start` or the current time) and moves only when
advanced, so tests drive delivery progression and callback retries without sleeping. A
"real" clock follows time.time(); advancing it still works (it skips ahead), which lets the
demo fast-forward too.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone

MOSCOW = timezone(timedelta(hours=3), "MSK")  # sms.ru's day (daily limits) is Moscow's day


class Clock:
    def __init__(self, mode: str = "real", start: float | None = None) -> None:
        if mode not in ("real", "manual"):
            raise ValueError(f"clock mode must be 'real' or 'manual', got {mode!r}")
        self.mode = mode
        self._lock = threading.Lock()
        self._frozen = time.time() if start is None else float(start)
        self._offset = 0.0

    def now(self) -> float:
        with self._lock:
            base = time.time() if self.mode == "real" else self._frozen
            return base + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()


def moscow_date(ts: float) -> date:
    return datetime.fromtimestamp(ts, tz=UTC).astimezone(MOSCOW).date()
