"""Every job the worker runs. Features add their jobs here (one line each)."""

from __future__ import annotations

from clinic.worker.jobs import Job


def all_jobs() -> list[Job]:
    jobs: list[Job] = []
    return jobs
