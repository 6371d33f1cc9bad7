"""Everything the Mango emulator can be told at start-up (and some of it at run time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .clock import Clock, SystemClock

DEMO_KEY = "mango-emulator-key"
DEMO_SALT = "mango-emulator-salt"

# The clinic's robot template fields (manual, "Mango Office" chapter) with made-up ids.
DEFAULT_CUSTOM_FIELDS: dict[str, int] = {
    "Время": 5901,
    "Дата": 5902,
    "Услуга": 5903,
    "Специалист": 5904,
    "Пациент_ФИО": 5905,
}

INFO_FIELDS = ("comment", "name", "organization", "position")  # or "custom:<id>"
WEBHOOK_FORMATS = ("json", "form", "template")


@dataclass
class CampaignSpec:
    """An outbound campaign. Status codes as in API §4.6.9: 0 stopped, 1 scheduled,
    2 running, 3 stopping, 4 finished. task/add needs endless=True (API §4.6.8)."""

    campaign_id: int
    endless: bool = True
    status: int = 1


@dataclass
class EmulatorOptions:
    api_key: str = DEMO_KEY
    api_salt: str = field(default=DEMO_SALT, repr=False)
    # Where a "call" POSTs {"id": ..., "status": 1|2}; None = record the call only.
    webhook_url: str | None = None
    campaigns: list[CampaignSpec] = field(default_factory=lambda: [CampaignSpec(56919)])
    custom_fields: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CUSTOM_FIELDS))
    # Which task field plays «Доп. информация» and is sent back as `id`; mango.md infers comment.
    info_field: str = "comment"
    # json: {"id": "<value>", "status": n}; form: id=..&status=..; template: the manual's
    # template substituted literally, `{"id": <value>, ...}` without quotes (bad JSON for text ids).
    webhook_format: str = "json"
    webhook_timeout: float = 5.0
    digit_status: dict[str, int] = field(default_factory=lambda: {"1": 1, "2": 2})
    # Dial every new task by itself: a digit to press, or "none" for "no answer".
    auto_dial: str | None = None
    auto_dial_delay: float = 0.0
    latency: float = 0.0  # seconds added before every /vpbx answer
    rate_limit: int | None = 10  # VPBX API, per key per second (API §1.4.2); None = off
    task_add_rate: int | None = 5  # task creation, per second, answered 5008 (API §1.4.3)
    bad_request_lockout: bool = False  # 401 for 2 min after a second 3xxx in 2 min (API §1.4.1)
    errors_as_http_200: bool = False  # answer error codes with HTTP 200, as the doc allows
    max_tasks_per_campaign: int = 10_000  # 5107 beyond this (result-code list)
    clock: Clock = field(default_factory=SystemClock, repr=False)

    def __post_init__(self) -> None:
        if self.webhook_format not in WEBHOOK_FORMATS:
            raise ValueError(f"webhook_format must be one of {WEBHOOK_FORMATS}")
        if self.info_field not in INFO_FIELDS and not self.info_field.startswith("custom:"):
            raise ValueError(f"info_field must be one of {INFO_FIELDS} or custom:<id>")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EmulatorOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown emulator options: {sorted(unknown)}")
        data = dict(values)
        if "campaigns" in data:
            data["campaigns"] = [
                c if isinstance(c, CampaignSpec) else CampaignSpec(**c) for c in data["campaigns"]
            ]
        return cls(**data)

    # Options that /_emulator/config may change while running.
    RUNTIME_KEYS: ClassVar[tuple[str, ...]] = (
        "webhook_url",
        "info_field",
        "webhook_format",
        "webhook_timeout",
        "digit_status",
        "auto_dial",
        "auto_dial_delay",
        "latency",
        "rate_limit",
        "task_add_rate",
        "bad_request_lockout",
        "errors_as_http_200",
    )

    def public(self) -> dict[str, Any]:
        """The options as JSON, without the salt."""
        out = {name: getattr(self, name) for name in self.RUNTIME_KEYS}
        out["api_key"] = self.api_key
        out["campaigns"] = [vars(c) for c in self.campaigns]
        out["custom_fields"] = self.custom_fields
        out["max_tasks_per_campaign"] = self.max_tasks_per_campaign
        return out
