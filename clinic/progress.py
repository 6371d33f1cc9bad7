"""Live progress of long work (a mailing's sending, the Mango export) for the pages.

The worker pushes: `Publisher.publish` POSTs a snapshot to ari_app's loopback control API
(`POST /progress`, X-Control-Token) and ari_app fans it out as the event `progress` on the
browsers' event channel, to the users named (and, with `admins`, to every active admin).

Why push and not ari_app polling the database: only the worker knows when a batch is done,
so a push costs nothing while no work runs, arrives at once, and needs no new query loop
in ari_app's call-log process. Pushing is fail-open: a short timeout, no retries, and after
a failure no attempt for `PAUSE_S`, so a stopped ari_app never slows sending; the pages keep
their own fallback (the mailing page reloads itself).

At most one POST per job every `INTERVAL_S`, except the final one (`done`), which always goes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import ROLE_ADMIN, User

log = logging.getLogger("clinic.progress")

KINDS = ("mailing", "export")
INTERVAL_S = 0.5
TIMEOUT_S = (0.3, 0.5)  # connect, read: ari_app is on loopback
PAUSE_S = 10.0


@dataclass(frozen=True)
class Progress:
    """One snapshot of a job: what is done and what is left."""

    kind: str  # "mailing" | "export"
    id: int
    sent: int
    failed: int
    left: int
    started_at: datetime | None = None  # aware UTC: when this run of the job began
    rate: float = 0.0  # items per second since started_at
    done: bool = False

    def body(self, user_ids: set[int], admins: bool) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "sent": self.sent,
            "failed": self.failed,
            "left": self.left,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "rate": round(self.rate, 2),
            "done": self.done,
            "user_ids": sorted(user_ids),
            "admins": admins,
        }


Post = Callable[[str, dict[str, Any], dict[str, str]], None]


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    resp = requests.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    resp.raise_for_status()


class Publisher:
    """Thread-safe (a mailing's sender threads share one)."""

    def __init__(
        self,
        control_url: str,
        token: str,
        *,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        post: Post = _post,
    ) -> None:
        self.url = control_url.rstrip("/") + "/progress"
        self.token = token
        self.interval = interval
        self.clock = clock
        self.post = post
        self._lock = threading.Lock()
        self._last: dict[tuple[str, int], float] = {}
        self._paused_until = 0.0

    def due(self, kind: str, job_id: int) -> bool:
        """Whether a snapshot of this job would go now (the throttle and the pause)."""
        now = self.clock()
        with self._lock:
            return now >= self._paused_until and now - self._last.get((kind, job_id), -1e9) >= self.interval

    def publish(
        self, progress: Progress, *, user_ids: set[int], admins: bool = False, force: bool = False
    ) -> bool:
        """Send one snapshot unless throttled (`done` and `force` are not); True if it went
        out. Never raises."""
        key = (progress.kind, progress.id)
        now = self.clock()
        urgent = progress.done or force
        with self._lock:
            if now < self._paused_until and not urgent:
                return False
            if not urgent and now - self._last.get(key, -1e9) < self.interval:
                return False
            self._last[key] = now
            if progress.done:
                self._last.pop(key, None)
        try:
            self.post(self.url, progress.body(user_ids, admins), {"X-Control-Token": self.token})
        except Exception as exc:  # noqa: BLE001 - fail-open: progress is a nicety, the work is not
            with self._lock:
                self._paused_until = self.clock() + PAUSE_S
            log.info("progress of %s %s not published: %s", progress.kind, progress.id, exc)
            return False
        return True


_shared: dict[tuple[str, str], Publisher] = {}
_shared_lock = threading.Lock()


def publisher(control_url: str, token: str) -> Publisher:
    """One publisher per control API for the process: its throttle outlives a job's run."""
    with _shared_lock:
        return _shared.setdefault((control_url, token), Publisher(control_url, token))


def admin_ids(session: Session) -> list[int]:
    """The active administrators (run in ari_app's call-log process for `admins`)."""
    return list(
        session.scalars(
            select(User.id).where(User.role == ROLE_ADMIN, User.is_active.is_(True)).order_by(User.id)
        )
    )
