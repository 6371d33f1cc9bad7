"""Applying the robot's answer (UpdateStatus callback or campaign report) to appointments.

Rules:
- status 1 → «Запись подтверждена», 2 → «Запись отменена» in «Доп. информация»; the
  confirmation status, source and time are stored.
- status 2 is the patient's cancellation: the appointment becomes «Отменён» the way staff
  cancel one (clinic.services.schedule.cancel_appointment), with the reason
  «Отменено пациентом (робот Mango)», so the slot is free for another patient.
- A repeated answer changes nothing (not even the time).
- A stale answer never overwrites a later change by staff: it is ignored when the
  appointment is no longer «Записан» (cancelled, arrived, seen, no-show), was moved since it
  was sent, or was confirmed by staff after the task was sent.
- A confirmation after the robot's own cancellation is stale too: the appointment stays
  cancelled (its time may already belong to another patient, and a cancelled appointment is
  never reopened), but staff are told — a line in «Доп. информация» and a warning in the
  server tasks' journal — so a registrar calls the patient back and books again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import STATUS_BOOKED, STATUS_CANCELLED, Appointment, JournalEntry, RobotTask, utcnow
from clinic.models.robot import SERVER_TASK_SERVICES, TASK_MANGO_EXPORT
from clinic.services.schedule.appointments import cancel_appointment

STATUS_TEXT = {1: "Запись подтверждена", 2: "Запись отменена"}
STATUS_CODE = {1: "confirmed", 2: "cancelled"}
SOURCE_CALLBACK = "mango"
SOURCE_REPORT = "mango_report"
ROBOT_SOURCES = (SOURCE_CALLBACK, SOURCE_REPORT)
ROBOT_CANCEL_REASON = "Отменено пациентом (робот Mango)"
CONFIRMED_AFTER_CANCEL = "Пациент подтвердил запись после отмены через робота — перезвоните пациенту"
JOURNAL_SERVICE = SERVER_TASK_SERVICES[TASK_MANGO_EXPORT]

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
    if appointment.status != STATUS_BOOKED:
        return True
    if appointment.starts_at != sent_starts_at:
        return True
    if appointment.confirmation_source and appointment.confirmation_source not in ROBOT_SOURCES:
        confirmed = _aware(appointment.confirmed_at)
        sent = _aware(robot_task.sent_at) or _aware(robot_task.created_at)
        if confirmed is None or sent is None or confirmed >= sent:
            return True
    return False


def _cancelled_by_robot(appointment: Appointment) -> bool:
    return (
        appointment.status == STATUS_CANCELLED
        and appointment.confirmation_status == "cancelled"
        and appointment.confirmation_source in ROBOT_SOURCES
    )


def _report_confirmed_after_cancel(session: Session, appointment: Appointment) -> None:
    """Tell staff once; a repeated answer adds nothing."""
    if CONFIRMED_AFTER_CANCEL in (appointment.extra_info or "").splitlines():
        return
    appointment.extra_info = "\n".join([appointment.extra_info or "", CONFIRMED_AFTER_CANCEL]).strip("\n")
    when = f"{appointment.starts_at:%d.%m.%Y %H:%M}"  # the clinic's wall clock, as stored
    session.add(
        JournalEntry(
            service=JOURNAL_SERVICE,
            level="warning",
            message=(
                f"Запись №{appointment.id} на {when}: пациент подтвердил её после отмены через робота. "
                "Запись остаётся отменённой (время могло быть отдано другому пациенту) — перезвоните пациенту"
            ),
        )
    )


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
            if code == "confirmed" and _cancelled_by_robot(appointment):
                _report_confirmed_after_cancel(session, appointment)
            continue
        appointment.confirmation_status = code
        appointment.confirmation_source = source
        appointment.confirmed_at = now
        appointment.extra_info = _with_status_text(appointment.extra_info, text)
        if code == "cancelled":
            cancel_appointment(session, appointment.id, {"reason": ROBOT_CANCEL_REASON})
        outcome.changed.append(appointment.id)
    if outcome.changed:
        outcome.result = APPLIED
        robot_task.result_status = status
        robot_task.result_at = now
    elif outcome.stale and not outcome.unchanged:
        outcome.result = STALE
    return outcome
