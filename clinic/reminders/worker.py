"""The worker's `reminders` job: stop what a confirmation (or a cancellation, or a move)
made pointless, plan what is due, and hand the due reminders to their channels.

One run (`tick`), every step in its own short transactions, all state in the database:

1. stop: planned reminders of visits confirmed (by anyone: registrar, SMS, a robot, an
   inbound call: they all write `appointments.confirmation_status`), cancelled or moved
   become «Остановлено»; SMS reminders still queued in the ledger are skipped; each channel
   withdraws what it handed over (the Mango robot deletes its pending task).
2. plan: for every active rule with a registered channel, one `reminder_jobs` row per visit
   whose reminder moment has come (unique on rule, appointment and visit time: a restarted
   worker or a second one plans nothing twice).
3. send: each due reminder is checked again at that moment (still booked, not confirmed,
   not moved, before its ttl); in quiet hours (the clinic's zone) it waits for their end,
   never dropped unless the end is past its ttl; the rest go to their channel.

The clock is a parameter, so tests run days of reminders in a second.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import clinic_zone
from clinic.config import Config
from clinic.models import STATUS_BOOKED, Appointment, SmsMessage
from clinic.models.reminders import (
    JOB_PLANNED,
    JOB_SENT,
    JOB_SKIPPED,
    JOB_STOPPED,
    ReminderJob,
    ReminderRule,
)
from clinic.models.sms import MSG_QUEUED, MSG_SKIPPED
from clinic.reminders import channels
from clinic.reminders.planning import plan_rule
from clinic.services.settings import read_settings
from clinic.sms import rules as sms_rules

log = logging.getLogger("clinic.reminders")

BATCH = 500  # due reminders checked and handed over per round
MAX_ROUNDS = 20  # rounds per run: a backlog larger than this waits for the next run

SOURCE_TITLES = {
    "registrar": "регистратор",
    "mango": "робот Mango",
    "mango_report": "робот Mango",
    "sms": "ответ на СМС",
    "voice": "голосовой робот",
    "inbound": "входящий звонок",
    "api": "МИС",
}
RULE_OFF_NOTE = "Правило выключено или его канал не подключён"
TOO_LATE_NOTE = "Слишком поздно: приём скоро начнётся, напоминание не отправлено"
QUIET_PAST_TTL_NOTE = "Тихие часы закончатся слишком поздно: до приёма не успеть, напоминание не отправлено"


def utcnow() -> datetime:
    return datetime.now(UTC)


def stop_reason(
    status: str, confirmation: str, source: str, starts_at: datetime, planned_for: datetime
) -> str | None:
    """Why a reminder of this visit must not go (Russian), or None."""
    if status != STATUS_BOOKED or confirmation == "cancelled":
        return "Запись отменена: напоминание не отправлено"
    if confirmation:
        who = SOURCE_TITLES.get(source, source or "")
        return (
            f"Запись подтверждена ({who}): напоминание не нужно"
            if who
            else "Запись подтверждена: напоминание не нужно"
        )
    if starts_at != planned_for:
        return f"Запись перенесена на {starts_at:%d.%m.%Y %H:%M}: напоминание о прежнем времени не отправлено"
    return None


_UNSETTLED = and_(
    Appointment.status == STATUS_BOOKED,
    Appointment.confirmation_status == "",
    Appointment.starts_at == ReminderJob.starts_at,
)


def _settled_rows(session: Session, where: object) -> list[tuple[int, str]]:
    rows = session.execute(
        select(
            ReminderJob.id,
            Appointment.status,
            Appointment.confirmation_status,
            Appointment.confirmation_source,
            Appointment.starts_at,
            ReminderJob.starts_at.label("planned_for"),
        )
        .join(Appointment, Appointment.id == ReminderJob.appointment_id)
        .where(where, ~_UNSETTLED)  # type: ignore[arg-type]
    ).all()
    found = []
    for r in rows:
        reason = stop_reason(
            r.status, r.confirmation_status, r.confirmation_source, r.starts_at, r.planned_for
        )
        if reason:
            found.append((r.id, reason))
    return found


def _stop(session: Session, found: list[tuple[int, str]], now: datetime, *, from_state: str) -> int:
    by_note: dict[str, list[int]] = defaultdict(list)
    for job_id, note in found:
        by_note[note[:300]].append(job_id)
    stopped = 0
    for note, ids in by_note.items():
        result = session.execute(
            update(ReminderJob)
            .where(ReminderJob.id.in_(ids), ReminderJob.state == from_state)
            .values(state=JOB_STOPPED, note=note, done_at=now)
            .execution_options(synchronize_session=False)
        )
        stopped += result.rowcount or 0
    return stopped


def stop_settled(sessions: sessionmaker[Session], now: datetime) -> int:
    """Step 1 for the planned reminders and the SMS still queued in the ledger. Reads first:
    an idle run takes no write lock."""
    stopped = 0
    with sessions() as session:
        planned = _settled_rows(session, ReminderJob.state == JOB_PLANNED)
        queued = _settled_rows(
            session,
            and_(
                ReminderJob.state == JOB_SENT,
                ReminderJob.sms_message_id.in_(select(SmsMessage.id).where(SmsMessage.state == MSG_QUEUED)),
            ),
        )
        off = list(
            session.scalars(
                select(ReminderJob.id)
                .join(ReminderRule, ReminderRule.id == ReminderJob.rule_id)
                .where(
                    ReminderJob.state == JOB_PLANNED,
                    or_(
                        ReminderRule.is_active.is_(False),
                        ReminderRule.channel.not_in([c.key for c in channels.registered()]),
                    ),
                )
            )
        )
    if not (planned or queued or off):
        return 0
    with sessions() as session, session.begin():
        stopped = _stop(session, planned, now, from_state=JOB_PLANNED)
        stopped += _stop(session, [(i, RULE_OFF_NOTE) for i in off], now, from_state=JOB_PLANNED)
        for job_id, note in queued:
            message_id = session.scalar(select(ReminderJob.sms_message_id).where(ReminderJob.id == job_id))
            done = session.execute(
                update(SmsMessage)
                .where(SmsMessage.id == message_id, SmsMessage.state == MSG_QUEUED)
                .values(state=MSG_SKIPPED, note=note[:300])
                .execution_options(synchronize_session=False)
            )
            if done.rowcount:
                stopped += _stop(session, [(job_id, note)], now, from_state=JOB_SENT)
    return stopped


def plan(sessions: sessionmaker[Session], now: datetime) -> int:
    """Step 2: a row per visit due now, for every active rule whose channel is registered."""
    made = 0
    with sessions() as session:
        zone = clinic_zone(session)
        keys = [c.key for c in channels.registered()]
        rule_ids = list(
            session.scalars(
                select(ReminderRule.id).where(
                    ReminderRule.is_active.is_(True), ReminderRule.channel.in_(keys)
                )
            )
        )
    for rule_id in rule_ids:
        with sessions() as session:
            rule = session.get(ReminderRule, rule_id)
            if rule is None:
                continue
            jobs = plan_rule(session, rule, now, zone)
            if not jobs:
                continue
            try:
                with session.begin_nested():
                    session.add_all(jobs)
                session.commit()
                made += len(jobs)
            except IntegrityError:  # another worker planned some of them a moment ago
                session.rollback()
                made += _plan_one_by_one(sessions, rule_id, now, zone)
    return made


def _plan_one_by_one(sessions: sessionmaker[Session], rule_id: int, now: datetime, zone: object) -> int:
    made = 0
    with sessions() as session:
        rule = session.get(ReminderRule, rule_id)
        assert rule is not None
        for job in plan_rule(session, rule, now, zone):  # type: ignore[arg-type]
            try:
                with session.begin_nested():
                    session.add(job)
                session.commit()
                made += 1
            except IntegrityError:
                session.rollback()
    return made


@dataclass
class Checked:
    ready: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    deferred: int = 0
    stopped: int = 0
    skipped: int = 0


def check_due(sessions: sessionmaker[Session], now: datetime, limit: int = BATCH) -> Checked:
    """Step 3, the checks at the moment of sending: returns the reminders ready, by channel;
    the others are stopped, skipped or deferred to the end of quiet hours (committed)."""
    out = Checked()
    with sessions() as session, session.begin():
        settings = read_settings(session)
        quiet_end = sms_rules.quiet_until(settings, now)
        rows = session.execute(
            select(ReminderJob, Appointment)
            .join(Appointment, Appointment.id == ReminderJob.appointment_id)
            .where(
                ReminderJob.state == JOB_PLANNED,
                or_(ReminderJob.not_before.is_(None), ReminderJob.not_before <= now),
            )
            .order_by(ReminderJob.due_at, ReminderJob.id)
            .limit(limit)
        ).all()
        for job, appt in rows:
            reason = stop_reason(
                appt.status, appt.confirmation_status, appt.confirmation_source, appt.starts_at, job.starts_at
            )
            if reason:
                job.state, job.note, job.done_at = JOB_STOPPED, reason, now
                out.stopped += 1
            elif now >= sms_rules.as_aware(job.expires_at):
                job.state, job.note, job.done_at = JOB_SKIPPED, TOO_LATE_NOTE, now
                out.skipped += 1
            elif quiet_end is not None:
                if quiet_end >= sms_rules.as_aware(job.expires_at):
                    job.state, job.note, job.done_at = JOB_SKIPPED, QUIET_PAST_TTL_NOTE, now
                    out.skipped += 1
                else:
                    job.not_before = quiet_end
                    local = quiet_end.astimezone(sms_rules.zone(settings))
                    job.note = f"Тихие часы: отправка отложена до {local:%d.%m.%Y %H:%M}"
                    out.deferred += 1
            elif channels.get(job.channel) is None:
                job.state, job.note, job.done_at = JOB_STOPPED, RULE_OFF_NOTE, now
                out.stopped += 1
            else:
                out.ready[job.channel].append(job.id)
    return out


@dataclass
class TickReport:
    stopped: int = 0
    withdrawn: int = 0
    planned: int = 0
    handed: int = 0
    deferred: int = 0
    skipped: int = 0


def tick(
    sessions: sessionmaker[Session],
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    options: dict[str, object] | None = None,
) -> TickReport:
    """One run of the job. Safe to repeat and to interrupt anywhere."""
    ctx = channels.Context(sessions, config, clock, options or {})
    report = TickReport()
    report.stopped = stop_settled(sessions, clock())
    for channel in channels.registered():
        if channel.withdraw is not None:
            try:
                report.withdrawn += channel.withdraw(ctx)
            except Exception:  # one channel's trouble must not stop the others
                log.exception("напоминания: канал %s не отозвал задания", channel.key)
    report.planned = plan(sessions, clock())
    for _round in range(MAX_ROUNDS):
        checked = check_due(sessions, clock())
        report.deferred += checked.deferred
        report.skipped += checked.skipped
        report.stopped += checked.stopped
        handed = 0
        for key, ids in checked.ready.items():
            channel = channels.get(key)
            if channel is None:
                continue
            try:
                channel.dispatch(ctx, ids)
            except Exception:
                log.exception("напоминания: канал %s не отправил %d напоминаний", key, len(ids))
                continue  # they stay planned: the next run tries again
            handed += len(ids)
        report.handed += handed
        # another round only while whole batches went out: what stayed planned waits a run
        if handed < BATCH:
            break
    return report
