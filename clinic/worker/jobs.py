"""What a job is and what it gets when it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config


@dataclass(frozen=True)
class JobContext:
    config: Config
    sessions: sessionmaker[Session]


@dataclass(frozen=True)
class Job:
    """A unit of periodic work. `run` must be safe to call again after a crash: every job
    keeps its progress in the database, never in memory, so a restarted worker resumes."""

    name: str
    interval_s: float
    run: Callable[[JobContext], None]
