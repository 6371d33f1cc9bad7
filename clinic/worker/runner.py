"""The worker loop: run each job when it is due, isolate failures, stop promptly on request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from clinic.worker.jobs import Job, JobContext

log = logging.getLogger(__name__)


def run_jobs(ctx: JobContext, jobs: Sequence[Job], stop: threading.Event) -> None:
    """Run until `stop` is set. A failing job is logged and retried at its next interval;
    it never takes the worker down."""
    due = {job.name: 0.0 for job in jobs}
    while not stop.is_set():
        now = time.monotonic()
        for job in jobs:
            if stop.is_set():
                return
            if due[job.name] > now:
                continue
            try:
                job.run(ctx)
            except Exception:
                log.exception("задача %s завершилась с ошибкой", job.name)
            due[job.name] = time.monotonic() + job.interval_s
        next_due = min(due.values(), default=time.monotonic() + 60)
        stop.wait(max(0.05, next_due - time.monotonic()))


def run_once(ctx: JobContext, jobs: Sequence[Job]) -> dict[str, str]:
    """Run every job one time (tests, `mis-telephony worker --once`); returns name -> outcome."""
    outcome: dict[str, str] = {}
    for job in jobs:
        try:
            job.run(ctx)
            outcome[job.name] = "ok"
        except Exception as exc:
            log.exception("задача %s завершилась с ошибкой", job.name)
            outcome[job.name] = f"error: {exc.__class__.__name__}"
    return outcome
