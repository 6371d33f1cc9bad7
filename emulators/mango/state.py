"""The emulator's in-memory world: campaigns, tasks, call attempts and the request log.

One re-entrant lock guards it all; handlers hold it only while reading or changing state,
never across network I/O (the webhook POST happens outside it).
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .options import CampaignSpec
from .validation import number_key

FREEZE_EVERY = 500  # requests between gc.freeze() calls (see log_request)

# Task statuses (API §4.6.13): 0 stopped, 1 queued, 2 in progress, 4 done, 6 deleted.
TASK_STOPPED, TASK_QUEUED, TASK_IN_PROGRESS, TASK_DONE, TASK_DELETED = 0, 1, 2, 4, 6
ACTIVE_STATUSES = frozenset({TASK_STOPPED, TASK_QUEUED, TASK_IN_PROGRESS})
CAMPAIGN_FINISHED = 4


@dataclass
class TaskRecord:
    task_id: int
    campaign_id: int
    fields: dict[str, Any]  # the task exactly as it was sent
    via: str  # "task/add" or "tasks/push"
    created_at: float
    status: int = TASK_QUEUED
    status_reason: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def number_key(self) -> str:  # the number never changes; cached, it is read per task/add
        return number_key(self.fields["number"])

    def as_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "campaign_id": self.campaign_id,
            "status": self.status,
            "status_reason": self.status_reason,
            "via": self.via,
            "created_at": self.created_at,
            "fields": self.fields,
            "attempts": self.attempts,
            "webhooks": self.webhooks,
        }


class Store:
    def __init__(self, campaigns: list[CampaignSpec]) -> None:
        self.lock = threading.RLock()
        self._initial = [CampaignSpec(c.campaign_id, c.endless, c.status) for c in campaigns]
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.campaigns: dict[int, CampaignSpec] = {
                c.campaign_id: CampaignSpec(c.campaign_id, c.endless, c.status) for c in self._initial
            }
            self.tasks: dict[int, TaskRecord] = {}
            self.requests: list[dict[str, Any]] = []
            self._next_task_id = 3223  # the doc's example id, for familiarity
            self._next_attempt_id = 1103475052
            self.first_bad_request_at: float | None = None
            self.blocked_until: float | None = None

    def new_task_id(self) -> int:
        with self.lock:
            self._next_task_id += 1
            return self._next_task_id

    def new_attempt_id(self) -> int:
        with self.lock:
            self._next_attempt_id += 1
            return self._next_attempt_id

    def campaign_tasks(self, campaign_id: int) -> list[TaskRecord]:
        with self.lock:
            return [t for t in self.tasks.values() if t.campaign_id == campaign_id]

    def active_numbers(self, campaign_id: int) -> set[str]:
        with self.lock:
            return {t.number_key for t in self.campaign_tasks(campaign_id) if t.status in ACTIVE_STATUSES}

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["seq"] = len(self.requests) + 1
            self.requests.append(entry)
            if entry["seq"] % FREEZE_EVERY == 0:
                # Every task and request is kept for inspection. A full garbage collection
                # over them stalled the server for 100-300 ms at 10,000 tasks, and a stalled
                # server stamps the requests queued behind it together: its strict rate
                # window then saw bursts nobody sent. Frozen objects are never scanned again.
                gc.freeze()
