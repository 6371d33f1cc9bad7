"""Fault injection and releasable delays for the Mango emulator.

Delays wait on a condition rather than sleeping so a test can end them early
(`POST /_emulator/release`) and can wait until a request is actually parked in one
(`Holds.wait_for_waiting`) instead of guessing with a sleep.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("error", "rate_limit", "delay_before", "delay_after")


@dataclass
class Fault:
    """`error`: answer `result` (HTTP `http_status`) without processing.
    `rate_limit`: answer as if over the limit (429 for most paths, 5008 for task/add).
    `delay_before`: wait `seconds` (or until released), then process normally.
    `delay_after`: process (the effect happens), then wait before answering — the shape of
    a lost answer. `times` counts uses; -1 means until cleared. `skip` lets that many
    matching requests through untouched first (a fault in the middle of a run)."""

    path: str = "*"
    kind: str = "error"
    result: int = 5003
    http_status: int | None = None
    seconds: float = 30.0
    times: int = 1
    skip: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        self.path = self.path.strip("/") or "*"


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """The first fault for `path` (or "*"), using one of its `times`."""
        with self._lock:
            for fault in self._faults:
                if fault.path in (path, "*"):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]


class Holds:
    """Delays that end after their time or when released, whichever comes first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._waiting = 0

    def wait(self, seconds: float) -> bool:
        """Park for up to `seconds`; True if released early."""
        with self._cond:
            generation = self._generation
            self._waiting += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._generation != generation, timeout=seconds)
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def release_all(self) -> int:
        with self._cond:
            released = self._waiting
            self._generation += 1
            self._cond.notify_all()
            return released

    @property
    def waiting(self) -> int:
        with self._cond:
            return self._waiting

    def wait_for_waiting(self, count: int, timeout: float) -> bool:
        """Block until at least `count` requests are parked; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting >= count, timeout=timeout)
