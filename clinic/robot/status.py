"""Applying the robot's answer (UpdateStatus callback or campaign report) to appointments.

Rules:
- status 1 → «Запись подтверждена», 2 → «Запись отменена» in «Доп. информация»; the
  confirmation status, source and time are stored.
- A repeated answer changes nothing (not even the time).
- A stale answer never overwrites a later change by staff: it is ignored when the
  appointment was cancelled, moved since it was sent, or confirmed by staff after the
  task was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import STATUS_CANCELLED, Appointment, RobotTask, utcnow

STATUS_TEXT = {1: "Запись подтверждена", 2: "Запись отменена"}
STATUS_CODE = {1: "confirmed", 2: "cancelled"}
SOURCE_CALLBACK = "mango"
SOURCE_REPORT = "mango_report"
ROBOT_SOURCES = (SOURCE_CALLBACK, SOURCE_REPORT)

APPLIED = "applied"
REPEATED = "repeated"
STALE = "stale"
NOT_FOUND = "not_found"


@dataclass
class StatusOutcome:
    result: str  # applied / repeated / stale / not_found (for the whole callback)
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return value


def _with_status_text(extra: str, text: str) -> str:
    """Replace an earlier robot phrase, keep whatever staff wrote."""
    lines = [line for line in (extra or "").splitlines() if line.strip() not in STATUS_TEXT.values()]
    return "\n".join([text, *lines]) if lines else text


def _is_stale(appointment: Appointment, robot_task: RobotTask, sent_starts_at: datetime) -> bool:
    if appointment.status == STATUS_CANCELLED:
        return True
    if appointment.starts_at != sent_starts_at:
        return True
    if appointment.confirmation_source and appointment.confirmation_source not in ROBOT_SOURCES:
        confirmed = _aware(appointment.confirmed_at)
        sent = _aware(robot_task.sent_at) or _aware(robot_task.created_at)
        if confirmed is None or sent is None or confirmed >= sent:
            return True
    return False


def find_task(session: Session, ref: str) -> RobotTask | None:
    return session.scalar(select(RobotTask).where(RobotTask.ref == ref))


def apply_status(session: Session, robot_task: RobotTask, status: int, source: str) -> StatusOutcome:
    """Apply to every appointment of the task; the caller commits."""
    code = STATUS_CODE[status]
    text = STATUS_TEXT[status]
    outcome = StatusOutcome(result=REPEATED)
    now = utcnow()
    for item in robot_task.items:
        appointment = session.get(Appointment, item.appointment_id, with_for_update=True)
        if appointment is None:
            continue
        if appointment.confirmation_status == code and appointment.confirmation_source in ROBOT_SOURCES:
            outcome.unchanged.append(appointment.id)
            continue
        if _is_stale(appointment, robot_task, item.starts_at):
            outcome.stale.append(appointment.id)
            continue
        appointment.confirmation_status = code
        appointment.confirmation_source = source
        appointment.confirmed_at = now
        appointment.extra_info = _with_status_text(appointment.extra_info, text)
        outcome.changed.append(appointment.id)
    if outcome.changed:
        outcome.result = APPLIED
        robot_task.result_status = status
        robot_task.result_at = now
    elif outcome.stale and not outcome.unchanged:
        outcome.result = STALE
    return outcome
