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
from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from clinic.models import (
    STATUS_BOOKED,
    STATUS_CANCELLED,
    Appointment,
    JournalEntry,
    RobotTask,
    RobotTaskItem,
    utcnow,
)
from clinic.models.base import Base
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


def with_status_text(extra: str, text: str) -> str:
    """Replace an earlier robot phrase, keep whatever staff wrote."""
    lines = [line for line in (extra or "").splitlines() if line.strip() not in STATUS_TEXT.values()]
    return "\n".join([text, *lines]) if lines else text


def is_stale(seen: Seen) -> bool:
    if seen.status != STATUS_BOOKED:
        return True
    if seen.starts_at != seen.sent_starts_at:
        return True
    if seen.confirmation_source and seen.confirmation_source not in ROBOT_SOURCES:
        confirmed = _aware(seen.confirmed_at)
        sent = _aware(seen.task_sent_at) or _aware(seen.task_created_at)
        if confirmed is None or sent is None or confirmed >= sent:
            return True
    return False


def _cancelled_by_robot(seen: Seen) -> bool:
    return (
        seen.status == STATUS_CANCELLED
        and seen.confirmation_status == "cancelled"
        and seen.confirmation_source in ROBOT_SOURCES
    )


def _report_confirmed_after_cancel(session: Session, seen: Seen) -> None:
    """Tell staff once; a repeated answer adds nothing."""
    if CONFIRMED_AFTER_CANCEL in (seen.extra_info or "").splitlines():
        return
    extra = "\n".join([seen.extra_info or "", CONFIRMED_AFTER_CANCEL]).strip("\n")
    _update(session, _SET_EXTRA, Appointment, seen.appointment_id, extra=extra)
    when = f"{seen.starts_at:%d.%m.%Y %H:%M}"  # the clinic's wall clock, as stored
    session.add(
        JournalEntry(
            service=JOURNAL_SERVICE,
            level="warning",
            message=(
                f"Запись №{seen.appointment_id} на {when}: пациент подтвердил её после отмены через робота. "
                "Запись остаётся отменённой (время могло быть отдано другому пациенту) — перезвоните пациенту"
            ),
        )
    )


def find_task(session: Session, ref: str) -> RobotTask | None:
    return session.scalar(select(RobotTask).where(RobotTask.ref == ref))


# The callback path runs hundreds of times a second on one committer thread (bench/mango.py
# UpdateStatus): the rules read plain rows and write with single UPDATE statements, not ORM
# objects, whose loading and unit-of-work bookkeeping cost several times the SQL itself.
APPOINTMENTS = Appointment.__table__
TASKS = RobotTask.__table__
ITEMS = RobotTaskItem.__table__


@dataclass(frozen=True)
class Seen:
    """What the rules read of one appointment of a task, with what was sent about it."""

    task_id: int
    task_sent_at: datetime | None
    task_created_at: datetime | None
    sent_starts_at: datetime
    appointment_id: int
    status: str
    starts_at: datetime
    confirmation_status: str
    confirmation_source: str
    confirmed_at: datetime | None
    extra_info: str


def _seen_query(task_filter: Any) -> Select[Any]:
    return (
        select(
            TASKS.c.id.label("task_id"),
            TASKS.c.sent_at.label("task_sent_at"),
            TASKS.c.created_at.label("task_created_at"),
            ITEMS.c.starts_at.label("sent_starts_at"),
            APPOINTMENTS.c.id.label("appointment_id"),
            APPOINTMENTS.c.status,
            APPOINTMENTS.c.starts_at,
            APPOINTMENTS.c.confirmation_status,
            APPOINTMENTS.c.confirmation_source,
            APPOINTMENTS.c.confirmed_at,
            APPOINTMENTS.c.extra_info,
        )
        .select_from(TASKS.join(ITEMS, ITEMS.c.robot_task_id == TASKS.c.id))
        .join(APPOINTMENTS, APPOINTMENTS.c.id == ITEMS.c.appointment_id)
        .where(task_filter)
        .order_by(ITEMS.c.id)
        .with_for_update(of=APPOINTMENTS)  # PostgreSQL; SQLite's writer is already alone
    )


# Built once: constructing a statement per callback cost as much as running it.
_SEEN_BY_REF = _seen_query(TASKS.c.ref == bindparam("key"))
_SEEN_BY_ID = _seen_query(TASKS.c.id == bindparam("key"))
_TASK_BY_REF = select(TASKS.c.id).where(TASKS.c.ref == bindparam("key"))
_SET_CONFIRMATION = (
    update(APPOINTMENTS)
    .where(APPOINTMENTS.c.id == bindparam("row_id"))
    .values(
        confirmation_status=bindparam("code"),
        confirmation_source=bindparam("source"),
        confirmed_at=bindparam("now"),
        extra_info=bindparam("extra"),
    )
)
_SET_EXTRA = (
    update(APPOINTMENTS).where(APPOINTMENTS.c.id == bindparam("row_id")).values(extra_info=bindparam("extra"))
)
_SET_RESULT = (
    update(TASKS)
    .where(TASKS.c.id == bindparam("row_id"))
    .values(result_status=bindparam("status"), result_at=bindparam("now"))
)


def _seen(session: Session, query: Select[Any], key: int | str) -> list[Seen]:
    """The task's appointments, locked for the change (FOR UPDATE on PostgreSQL)."""
    return [Seen(**row._mapping) for row in session.execute(query, {"key": key})]


def _update(session: Session, statement: Update, mapped: type[Base], row_id: int, **values: Any) -> None:
    session.execute(statement, {"row_id": row_id, **values})
    # an ORM copy of the row loaded earlier in this session (a group commit shares one)
    # must not hand back the values from before this statement
    stale = session.identity_map.get(identity_key(mapped, row_id))
    if stale is not None:
        session.expire(stale)


def apply_status_for_ref(session: Session, ref: str, status: int, source: str) -> StatusOutcome | None:
    """:func:`apply_status` for the task sent with «Доп. информация» `ref`; None if there is
    no such task. The caller commits."""
    seen = _seen(session, _SEEN_BY_REF, ref)
    if not seen and session.scalar(_TASK_BY_REF, {"key": ref}) is None:
        return None
    return _apply(session, seen, status, source)


def apply_status(session: Session, robot_task: RobotTask, status: int, source: str) -> StatusOutcome:
    """Apply to every appointment of the task; the caller commits."""
    return _apply(session, _seen(session, _SEEN_BY_ID, robot_task.id), status, source)


def _apply(session: Session, seen: list[Seen], status: int, source: str) -> StatusOutcome:
    code = STATUS_CODE[status]
    text = STATUS_TEXT[status]
    outcome = StatusOutcome(result=NOT_FOUND if not seen else REPEATED)
    now = utcnow()
    for row in seen:
        if row.confirmation_status == code and row.confirmation_source in ROBOT_SOURCES:
            outcome.unchanged.append(row.appointment_id)
            continue
        if is_stale(row):
            outcome.stale.append(row.appointment_id)
            if code == "confirmed" and _cancelled_by_robot(row):
                _report_confirmed_after_cancel(session, row)
            continue
        extra = with_status_text(row.extra_info, text)
        _update(
            session,
            _SET_CONFIRMATION,
            Appointment,
            row.appointment_id,
            code=code,
            source=source,
            now=now,
            extra=extra,
        )
        if code == "cancelled":  # the way staff cancel, with its checks and bookkeeping
            cancel_appointment(session, row.appointment_id, {"reason": ROBOT_CANCEL_REASON})
        outcome.changed.append(row.appointment_id)
    if outcome.changed:
        outcome.result = APPLIED
        _update(session, _SET_RESULT, RobotTask, seen[0].task_id, status=status, now=now)
    elif outcome.stale and not outcome.unchanged:
        outcome.result = STALE
    return outcome
