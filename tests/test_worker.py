"""The worker loop runs due jobs, survives a failing job and stops when asked."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.worker.jobs import Job, JobContext
from clinic.worker.runner import run_jobs, run_once


def test_failing_job_does_not_stop_the_others(config: Config, sessions: sessionmaker[Session]) -> None:
    ctx = JobContext(config, sessions)
    ran_twice = threading.Event()
    calls: list[str] = []
    stop = threading.Event()

    def broken(_ctx: JobContext) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    def healthy(_ctx: JobContext) -> None:
        calls.append("healthy")
        if calls.count("healthy") >= 2:
            ran_twice.set()
            stop.set()

    jobs = [Job("broken", 0.01, broken), Job("healthy", 0.01, healthy)]
    worker = threading.Thread(target=run_jobs, args=(ctx, jobs, stop))
    worker.start()
    assert ran_twice.wait(10), "the healthy job did not run again after the broken one failed"
    worker.join(10)
    assert not worker.is_alive()
    assert calls.count("broken") >= 1


def test_stop_is_prompt_even_with_long_intervals(config: Config, sessions: sessionmaker[Session]) -> None:
    stop = threading.Event()
    started = threading.Event()
    jobs = [Job("hourly", 3600, lambda _ctx: started.set())]
    worker = threading.Thread(target=run_jobs, args=(JobContext(config, sessions), jobs, stop))
    worker.start()
    assert started.wait(10)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()


def test_run_once_reports_each_outcome(config: Config, sessions: sessionmaker[Session]) -> None:
    def bad(_ctx: JobContext) -> None:
        raise ValueError("x")

    outcome = run_once(JobContext(config, sessions), [Job("ok", 1, lambda _c: None), Job("bad", 1, bad)])
    assert outcome == {"ok": "ok", "bad": "error: ValueError"}
