"""The worker's `reminders` job (clinic/worker/registry.py lists it)."""

from __future__ import annotations

import logging

from clinic.reminders import worker
from clinic.worker.jobs import Job, JobContext

log = logging.getLogger("clinic.reminders")

INTERVAL_S = 30.0


def run(ctx: JobContext) -> None:
    report = worker.tick(ctx.sessions, ctx.config)
    if report.planned or report.handed or report.stopped or report.withdrawn:
        log.info("напоминания: %s", report)


JOBS = (Job("reminders", INTERVAL_S, run),)
