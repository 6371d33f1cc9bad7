"""Data sent to and read from the outbound-campaign ("ИО") methods (API §4.6.x).

Tasks are checked here before sending: Mango tolerates one bad request per two minutes and
then blocks the whole API for two minutes (API §1.4.1), so a malformed task must never reach
it. Limits are the documented ones (§4.6.7-4.6.8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The custom fields the clinic's robot text uses (manual, "Mango Office" chapter).
CLINIC_FIELD_NAMES: tuple[str, ...] = ("Время", "Дата", "Услуга", "Специалист", "Пациент_ФИО")

MANGO_DATETIME = "%Y-%m-%d %H:%M:%S"


def mango_utc(value: datetime | str) -> str:
    """ "YYYY-MM-DD HH:MM:SS" in UTC. A naive datetime is refused: the clinic's times are
    local wall-clock times and guessing their zone would shift the calling window."""
    if isinstance(value, str):
        datetime.strptime(value, MANGO_DATETIME)  # raises ValueError on a wrong format
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("due_date/blocked_until must be timezone-aware (Mango expects UTC)")
    return value.astimezone(UTC).strftime(MANGO_DATETIME)


def _check_len(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")


@dataclass(frozen=True)
class Subtask:
    """An alternative number; calling stops at the first number that connects."""

    number: str
    order: int
    priority: int | None = None

    def to_json(self) -> dict[str, Any]:
        if not self.number or len(self.number) > 64:
            raise ValueError("subtask number must be 1..64 characters")
        if self.order < 0:
            raise ValueError("subtask order counts from 0")
        if self.priority is not None and not 1 <= self.priority <= 999:
            raise ValueError("subtask priority must be 1..999")
        out: dict[str, Any] = {"number": self.number, "order": self.order, "type": 0}  # type is always 0
        if self.priority is not None:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class Task:
    """One patient to call. `comment` carries the appointment id ("Доп. информация"), the
    value Mango's robot sends back as `id` (mango.md §2, inferred mapping).

    `custom_fields` is keyed by the numeric ids from custom-type/list, never by names.
    """

    number: str
    name: str | None = None
    comment: str | None = None
    priority: int | None = None
    organization: str | None = None
    position: str | None = None
    due_date: datetime | str | None = None
    blocked_until: datetime | str | None = None
    custom_fields: Mapping[int | str, str] = field(default_factory=dict)
    subtasks: Sequence[Subtask] = ()

    def to_json(self) -> dict[str, Any]:
        if not self.number or not self.number.strip():
            raise ValueError("task number is required")
        _check_len("number", self.number, 64)
        _check_len("name", self.name, 255)
        _check_len("organization", self.organization, 255)
        _check_len("position", self.position, 255)
        _check_len("comment", self.comment, 1024)
        if self.priority is not None and not 1 <= self.priority <= 1000:
            raise ValueError("priority must be 1..1000")
        out: dict[str, Any] = {"number": self.number}
        for key in ("name", "priority", "organization", "position", "comment"):
            val = getattr(self, key)
            if val is not None:
                out[key] = val
        if self.due_date is not None:
            out["due_date"] = mango_utc(self.due_date)
        if self.blocked_until is not None:
            out["blocked_until"] = mango_utc(self.blocked_until)
        if self.custom_fields:
            fields: dict[str, str] = {}
            for key, val in self.custom_fields.items():
                if not str(key).isdigit():
                    raise ValueError(f"custom field {key!r}: use the numeric id from custom-type/list")
                fields[str(key)] = str(val)  # Mango's examples send every value as a string
            out["custom_fields"] = fields
        if self.subtasks:
            out["subtasks"] = [s.to_json() for s in self.subtasks]
        return out


@dataclass(frozen=True)
class CustomField:
    id: int
    name: str
    field_type: str
    order: int | None = None
    props: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CustomField:
        return cls(
            id=int(raw["id"]),
            name=str(raw["name"]),
            field_type=str(raw.get("field_type") or ""),
            order=raw.get("order"),
            props=raw.get("props") or {},
        )


@dataclass(frozen=True)
class Attempt:
    """One call attempt from campaign-report/create (API §4.6.12).

    `digit` is the reply's `number` field, "цифра, набранная при голосовом исходящем
    обзвоне"; it is renamed because `number` reads like a phone number. `result` uses the
    status_reason codes: 1 = a conversation took place, 2 busy, 3 no answer, ...
    """

    attempt_id: int
    result: int | None
    digit: str | None = None
    text: str | None = None
    name: str | None = None
    phone: str | None = None
    record_id: str | None = None
    sms: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Attempt:
        def opt(key: str) -> str | None:
            val = raw.get(key)
            return None if val is None else str(val)

        return cls(
            attempt_id=int(raw["attempt_id"]),
            result=raw.get("result"),
            digit=opt("number"),
            text=opt("text"),
            name=opt("name"),
            phone=opt("phone"),
            record_id=opt("record_id"),
            sms=opt("sms"),
        )


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    attempts: Mapping[int, Sequence[Attempt]]  # task_id -> attempts, oldest first

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignReport:
        # Sorted by attempt_id: the doc's example lists them that way but does not promise it.
        attempts = {
            int(t["task_id"]): tuple(
                sorted((Attempt.from_json(a) for a in t.get("attempts") or []), key=lambda a: a.attempt_id)
            )
            for t in data.get("tasks") or []
        }
        return cls(campaign_id=int(data["campaign_id"]), attempts=attempts)

    def last_attempt(self, task_id: int) -> Attempt | None:
        tries = self.attempts.get(task_id) or ()
        return tries[-1] if tries else None

    def digit(self, task_id: int) -> str | None:
        """The digit pressed in the last attempt, if any."""
        last = self.last_attempt(task_id)
        return last.digit if last else None
