"""When a rule's reminder of a visit is due, and which visits a rule covers now.

Times: appointments are the clinic's naive wall clock; reminders' moments are aware UTC. A
reminder is planned (a `reminder_jobs` row) only once its moment has come, so a rule changed
or switched off in the meantime plans by its latest settings.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, select
from sqlalchemy.orm import Session

from clinic.models import STATUS_BOOKED, Appointment, Employee
from clinic.models.base import as_aware
from clinic.models.reminders import (
    JOB_SKIPPED,
    MOMENT_BEFORE,
    MOMENT_EVENING,
    MOMENT_ON_BOOKING,
    UNIT_DAYS,
    ReminderJob,
    ReminderRule,
)
from clinic.reminders.rules import parse_hhmm

LATE_RULE_NOTE = "Момент напоминания прошёл до включения правила"
MAX_PER_TICK = 1000  # reminders planned per rule per run: bounded transactions on a backlog


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))


def offset(rule: ReminderRule) -> timedelta:
    return (
        timedelta(days=rule.offset_value)
        if rule.offset_unit == UNIT_DAYS
        else timedelta(hours=rule.offset_value)
    )


def evening_at(rule: ReminderRule) -> time:
    at = parse_hhmm(rule.evening_time) or (18, 0)
    return time(*at)


def due_moment(rule: ReminderRule, starts_at: datetime, booked_at: datetime, zone: ZoneInfo) -> datetime:
    """The moment (aware UTC) the rule's reminder of a visit at `starts_at` is due."""
    if rule.moment == MOMENT_BEFORE:
        return _utc(starts_at - offset(rule), zone)
    if rule.moment == MOMENT_EVENING:
        return _utc(datetime.combine(starts_at.date() - timedelta(days=1), evening_at(rule)), zone)
    return as_aware(booked_at)


def expiry(rule: ReminderRule, starts_at: datetime, zone: ZoneInfo) -> datetime:
    """The ttl: no reminder goes at or after this moment (the visit less the rule's margin)."""
    return _utc(starts_at - timedelta(minutes=rule.stop_before_min), zone)


def candidates(rule: ReminderRule, now: datetime, zone: ZoneInfo) -> Select:  # type: ignore[type-arg]
    """Booked, unconfirmed visits the rule covers whose reminder is due by `now` (aware UTC)
    and not planned yet for their current time."""
    local_now = now.astimezone(zone).replace(tzinfo=None)
    earliest = local_now + timedelta(minutes=rule.stop_before_min)  # later ones are already too late
    query = select(Appointment).where(
        Appointment.status == STATUS_BOOKED,
        Appointment.confirmation_status == "",
        Appointment.starts_at > earliest,
        ~exists().where(
            and_(
                ReminderJob.rule_id == rule.id,
                ReminderJob.appointment_id == Appointment.id,
                ReminderJob.starts_at == Appointment.starts_at,
            )
        ),
    )
    if rule.moment == MOMENT_BEFORE:
        query = query.where(Appointment.starts_at <= local_now + offset(rule))
    elif rule.moment == MOMENT_EVENING:
        # due when the evening before has come: visits up to the end of tomorrow after it
        last_day = local_now.date() + timedelta(days=1 if local_now.time() >= evening_at(rule) else 0)
        query = query.where(Appointment.starts_at < datetime.combine(last_day + timedelta(days=1), time.min))
    elif rule.moment == MOMENT_ON_BOOKING:
        query = query.where(Appointment.created_at >= as_aware(rule.active_since))
    if rule.doctor_id is not None:
        query = query.where(Appointment.doctor_id == rule.doctor_id)
    if rule.service_id is not None:
        query = query.where(Appointment.service_id == rule.service_id)
    if rule.department:
        query = query.join(Employee, Employee.id == Appointment.doctor_id).where(
            Employee.specialty == rule.department
        )
    return query.order_by(Appointment.starts_at, Appointment.id).limit(MAX_PER_TICK)


def worth_planning(rule: ReminderRule, due: datetime, booked_at: datetime) -> bool:
    """A moment that passed before the rule worked is not made up for (a rule switched on
    must not flood patients), unless the visit was booked after that moment: booked late,
    the patient still gets the reminder at once."""
    if rule.moment == MOMENT_ON_BOOKING:
        return True
    return due >= as_aware(rule.active_since) or as_aware(booked_at) > due


def plan_rule(session: Session, rule: ReminderRule, now: datetime, zone: ZoneInfo) -> list[ReminderJob]:
    """New reminder rows for the visits due now (added to the session, not flushed)."""
    made: list[ReminderJob] = []
    for appt in session.scalars(candidates(rule, now, zone)):
        due = due_moment(rule, appt.starts_at, appt.created_at, zone)
        job = ReminderJob(
            rule_id=rule.id,
            appointment_id=appt.id,
            patient_id=appt.patient_id,
            starts_at=appt.starts_at,
            channel=rule.channel,
            due_at=due,
            expires_at=expiry(rule, appt.starts_at, zone),
            note="",
            created_at=now,
        )
        if not worth_planning(rule, due, appt.created_at):
            # kept as a row, so the visit is not looked at again every run
            job.state, job.note, job.done_at = JOB_SKIPPED, LATE_RULE_NOTE, now
        made.append(job)
    return made
