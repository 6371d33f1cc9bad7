"""Sending appointments to the Mango Office robot: selection, grouping by phone, and the
claim-then-send protocol that keeps an appointment from ever being sent twice.

Protocol, per Mango task (one phone, one or more appointments of the day):

1. In one transaction: a `robot_tasks` row in state `pending` plus one `robot_task_items`
   row per appointment (unique on the appointment), committed *before* any request. A
   second sender (another worker, a manual send) fails on that unique key and skips.
2. `task/add`. Success → `sent` with Mango's task_id. A lost answer → `unknown`.
3. A row left `pending` or `unknown` (the process was killed, or the answer was lost) is
   settled by the next run: the same task is sent again. Mango refuses a second active
   task for one number with 5109, so a 5109 here means the first request went through
   (`sent`, task id unknown) and a success means it had not. Either way Mango holds one
   task, and the patient gets one call.
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from clinic import progress
from clinic.clock import clinic_zone
from clinic.mango import (
    DuplicateNumberError,
    MangoClient,
    MangoError,
    OutcomeUnknownError,
    RateLimitError,
    Task,
    TransportError,
)
from clinic.models import (
    STATUS_BOOKED,
    Appointment,
    ExternalSystem,
    Patient,
    RobotTask,
    RobotTaskItem,
    utcnow,
)
from clinic.models.robot import ROBOT_FAILED, ROBOT_PENDING, ROBOT_SENT, ROBOT_UNKNOWN
from clinic.phones import is_mobile
from clinic.robot.systems import ClientOptions, ExchangeBuffer, field_ids, make_client

log = logging.getLogger(__name__)

RESOLVABLE = (ROBOT_PENDING, ROBOT_UNKNOWN)


def mango_number(e164: str) -> str:
    """+79001234567 → 79001234567 (Mango's documented digits form)."""
    return e164.lstrip("+")


def candidate_query(day: date):  # type: ignore[no-untyped-def]
    start = datetime.combine(day, time.min)
    return (
        select(Appointment)
        .join(Patient, Appointment.patient_id == Patient.id)
        .options(
            joinedload(Appointment.patient),
            joinedload(Appointment.doctor),
            joinedload(Appointment.service),
        )
        .where(
            Appointment.starts_at >= start,
            Appointment.starts_at < start + timedelta(days=1),
            Appointment.status == STATUS_BOOKED,
            Patient.phone.is_not(None),
            Patient.consent_calls.is_(True),
            ~exists().where(RobotTaskItem.appointment_id == Appointment.id),
        )
        .order_by(Appointment.starts_at, Appointment.id)
    )


def eligibility_problem(appointment: Appointment) -> str | None:
    """Why this appointment cannot go to the robot (Russian), or None."""
    patient = appointment.patient
    if appointment.status != STATUS_BOOKED:
        return f"запись в статусе «{appointment.status_title}»"
    if not patient.phone:
        return "у пациента нет телефона"
    if not is_mobile(patient.phone):
        return "телефон пациента не мобильный"
    if not patient.consent_calls:
        return "пациент не дал согласия на звонки"
    return None


def select_groups(session: Session, day: date) -> list[list[Appointment]]:
    """The day's appointments not yet sent, not cancelled, with a mobile phone and consent,
    grouped by phone (Mango allows one active task per number: 5109)."""
    groups: dict[str, list[Appointment]] = defaultdict(list)
    for appointment in session.scalars(candidate_query(day)).unique():
        if eligibility_problem(appointment) is None:
            groups[appointment.patient.phone or ""].append(appointment)
    return list(groups.values())


def _ru_date(d: date) -> str:
    return f"{d:%d.%m.%Y}"


def build_task(
    system: ExternalSystem, robot_task: RobotTask, appointments: Sequence[Appointment], zone
) -> Task:  # type: ignore[no-untyped-def]
    """One Mango task naming every appointment of the group."""
    ids = field_ids(system)
    first = appointments[0]
    patient = first.patient
    values = {
        "time": ", ".join(f"{a.starts_at:%H:%M}" for a in appointments),
        "date": _ru_date(first.starts_at.date()),
        "service": "; ".join(a.service.name if a.service else "приём" for a in appointments),
        "doctor": "; ".join(dict.fromkeys(a.doctor.short_name for a in appointments)),
        "patient": patient.full_name,
    }
    custom = {ids[role]: value[:255] for role, value in values.items() if role in ids}
    # The last moment to call: the evening before the first appointment, 21:00 clinic time.
    due = datetime.combine(first.starts_at.date() - timedelta(days=1), time(21, 0), tzinfo=zone)
    if due <= datetime.now(zone):
        due = datetime.combine(first.starts_at.date(), first.starts_at.time(), tzinfo=zone)
    return Task(
        number=mango_number(robot_task.phone),
        name=patient.full_name[:255],
        comment=robot_task.ref,
        due_date=due,
        custom_fields=custom,
    )


@dataclass
class SendOutcome:
    robot_task_id: int | None
    state: str  # sent / unknown / failed / skipped / merged
    message: str
    appointment_ids: list[int] = field(default_factory=list)


def claim(
    session: Session,
    system: ExternalSystem,
    appointments: Sequence[Appointment],
    *,
    source: str,
    run_id: int | None,
) -> RobotTask | None:
    """Step 1: write the pending task and its items and commit; None if another sender
    already claimed one of the appointments."""
    first = appointments[0]
    robot_task = RobotTask(
        external_system_id=system.id,
        campaign_id=system.campaign_id,
        phone=first.patient.phone,
        ref=str(first.id),
        state=ROBOT_PENDING,
        source=source,
        run_id=run_id,
        error="",
    )
    session.add(robot_task)
    try:
        session.flush()
        for a in appointments:
            session.add(
                RobotTaskItem(robot_task_id=robot_task.id, appointment_id=a.id, starts_at=a.starts_at)
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return robot_task


def claim_many(
    session: Session,
    system: ExternalSystem,
    groups: Sequence[Sequence[Appointment]],
    *,
    run_id: int | None,
) -> list[tuple[RobotTask, Sequence[Appointment]]]:
    """Step 1 for a batch in one transaction; if another sender got one of them first,
    fall back to claiming one by one so the rest still go."""
    claimed: list[tuple[RobotTask, Sequence[Appointment]]] = []
    try:
        for group in groups:
            first = group[0]
            robot_task = RobotTask(
                external_system_id=system.id,
                campaign_id=system.campaign_id,
                phone=first.patient.phone,
                ref=str(first.id),
                state=ROBOT_PENDING,
                source="task",
                run_id=run_id,
                error="",
                items=[RobotTaskItem(appointment_id=a.id, starts_at=a.starts_at) for a in group],
            )
            session.add(robot_task)
            claimed.append((robot_task, group))
        session.commit()
    except IntegrityError:
        session.rollback()
        claimed = []
        for group in groups:
            robot_task = claim(session, system, group, source="task", run_id=run_id)
            if robot_task is not None:
                claimed.append((robot_task, group))
    return claimed


def _appointments_of(session: Session, robot_task: RobotTask) -> list[Appointment]:
    ids = [item.appointment_id for item in robot_task.items]
    return list(
        session.scalars(
            select(Appointment)
            .options(
                joinedload(Appointment.patient),
                joinedload(Appointment.doctor),
                joinedload(Appointment.service),
            )
            .where(Appointment.id.in_(ids))
            .order_by(Appointment.starts_at, Appointment.id)
        ).unique()
    )


def call_mango(client: MangoClient, campaign_id: int, task: Task) -> tuple[int | None, MangoError | None]:
    """The request alone (safe on a worker thread: it touches no ORM object)."""
    try:
        return client.add_task(campaign_id, task), None
    except MangoError as exc:
        return None, exc


def record_outcome(
    session: Session,
    robot_task: RobotTask,
    ids: list[int],
    task_id: int | None,
    error: MangoError | None,
    *,
    resuming: bool,
    commit: bool,
) -> SendOutcome:
    """Step 3: the request's outcome onto the row."""
    if error is None:
        robot_task.task_id = task_id
        robot_task.state = ROBOT_SENT
        robot_task.sent_at = utcnow()
        robot_task.error = ""
        _done(session, commit)
        return SendOutcome(robot_task.id, ROBOT_SENT, f"задача Mango №{task_id}", ids)
    if isinstance(error, DuplicateNumberError):
        if resuming:
            # our earlier request went through before the answer was lost
            robot_task.state = ROBOT_SENT
            robot_task.sent_at = robot_task.sent_at or utcnow()
            robot_task.error = "повторная отправка: задача уже в кампании (5109), id неизвестен"
            _done(session, commit)
            return SendOutcome(robot_task.id, ROBOT_SENT, robot_task.error, ids)
        merged = _merge_into_existing(session, robot_task, commit)
        if merged is not None:
            return SendOutcome(merged.id, "merged", f"добавлено к задаче №{merged.ref} того же номера", ids)
        robot_task.state = ROBOT_FAILED
        robot_task.error = "номер уже есть в кампании (5109)"
    elif isinstance(error, OutcomeUnknownError):
        robot_task.state = ROBOT_UNKNOWN
        robot_task.error = error.message
        _done(session, commit)
        return SendOutcome(
            robot_task.id, ROBOT_UNKNOWN, "ответ Mango Office не получен, будет проверено", ids
        )
    elif isinstance(error, (RateLimitError, TransportError)):
        # nothing was done at Mango's end: leave it pending for the next run
        robot_task.error = error.message
        _done(session, commit)
        return SendOutcome(robot_task.id, ROBOT_PENDING, f"не отправлено: {error.message}", ids)
    else:
        robot_task.state = ROBOT_FAILED
        robot_task.error = f"{error.code}: {error.message}"
    _done(session, commit)
    return SendOutcome(robot_task.id, ROBOT_FAILED, robot_task.error, ids)


def send(
    session: Session,
    client: MangoClient,
    system: ExternalSystem,
    robot_task: RobotTask,
    *,
    resuming: bool = False,
    appointments: Sequence[Appointment] | None = None,
    zone: ZoneInfo | None = None,
    commit: bool = True,
) -> SendOutcome:
    """Steps 2-3 for one claimed (or left over) task. Its new state is committed at once,
    or with the caller's batch (`commit=False`): a crash before that commit leaves the
    row pending, which the next run settles."""
    if appointments is None:
        appointments = _appointments_of(session, robot_task)
    task = build_task(system, robot_task, appointments, zone or clinic_zone(session))
    task_id, error = call_mango(client, robot_task.campaign_id, task)
    ids = [a.id for a in appointments]
    return record_outcome(session, robot_task, ids, task_id, error, resuming=resuming, commit=commit)


def _done(session: Session, commit: bool) -> None:
    if commit:
        session.commit()  # otherwise the caller's batch commit writes it


def _merge_into_existing(session: Session, robot_task: RobotTask, commit: bool) -> RobotTask | None:
    """A 5109 on a fresh task: if one of our sent tasks already calls this number (sent
    earlier today by hand, say), the appointments join it, so its callback covers them."""
    existing = session.scalar(
        select(RobotTask)
        .where(
            RobotTask.phone == robot_task.phone,
            RobotTask.campaign_id == robot_task.campaign_id,
            RobotTask.state == ROBOT_SENT,
            RobotTask.result_status.is_(None),
            RobotTask.id != robot_task.id,
        )
        .order_by(RobotTask.id.desc())
    )
    if existing is None:
        return None
    for item in list(robot_task.items):
        item.robot_task = existing  # moves it out of robot_task.items as well
    session.flush()
    session.delete(robot_task)
    _done(session, commit)
    return existing


def leftovers(session: Session, system: ExternalSystem) -> list[RobotTask]:
    return list(
        session.scalars(
            select(RobotTask)
            .where(RobotTask.external_system_id == system.id, RobotTask.state.in_(RESOLVABLE))
            .order_by(RobotTask.id)
        )
    )


@dataclass
class ExportReport:
    found: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0
    outcomes: list[SendOutcome] = field(default_factory=list)


BATCH = 50  # groups claimed in one transaction; their states and log rows commit together
CONCURRENCY = 4  # task/add requests in flight; the rate limit is what paces them


def export_day(
    sessions: sessionmaker[Session],
    system_id: int,
    day: date,
    *,
    run_id: int | None = None,
    options: ClientOptions | None = None,
    journal: Callable[[str], None] = lambda _m: None,
    should_stop: Callable[[], bool] = lambda: False,
    batch: int = BATCH,
    concurrency: int = CONCURRENCY,
    on_progress: Callable[[ExportReport], None] = lambda _r: None,
) -> ExportReport:
    """Settle leftovers, then send every eligible appointment of `day`. `on_progress` (the
    live progress bar, `ExportProgress`) gets the report after every commit.

    Claims are committed a batch at a time *before* any of the batch is sent; the sent
    states and the exchange-log rows of the batch are committed together after it. A
    crash in between leaves pending rows that the next run settles (5109 = it went
    through), so batching trades no safety for the commits it saves."""
    report = ExportReport()
    log_buffer = ExchangeBuffer()
    with sessions() as session:
        system = session.get(ExternalSystem, system_id)
        if system is None or not system.is_active:
            raise RuntimeError("внешняя система Mango Office не найдена или отключена")
        if not system.campaign_id:
            raise RuntimeError("не задан ID кампании исходящего обзвона")
        zone = clinic_zone(session)
        campaign_id = system.campaign_id
        with (
            make_client(system, sessions, options, on_exchange=log_buffer.record) as client,
            ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="mango-export") as pool,
        ):
            try:
                if not field_ids(system):
                    from clinic.robot.systems import check_connection

                    result = check_connection(session, system, None, options, client=client)
                    log_buffer.flush_into(session)
                    session.commit()
                    if not result.ok:
                        raise RuntimeError(result.message)
                left = leftovers(session, system)
                if left:
                    journal(f"Незавершённых отправок с прошлого запуска: {len(left)}")
                for robot_task in left:
                    if should_stop():
                        return report
                    outcome = send(
                        session, client, system, robot_task, resuming=True, zone=zone, commit=False
                    )
                    log_buffer.flush_into(session)
                    session.commit()
                    report.resumed += 1
                    _count(report, outcome)
                    on_progress(report)
                groups = select_groups(session, day)
                # The day's appointments stay loaded for the whole run; frozen, they are left
                # out of full garbage collections, which otherwise paused every thread for
                # 100-300 ms at 10,000 appointments and let paced requests leave in a bunch.
                gc.freeze()
                report.found = sum(len(g) for g in groups)
                journal(f"Найдено записей: {report.found}")
                on_progress(report)
                # Pipelined: batch k+1 is claimed and queued while batch k is in flight, so
                # the rate limiter never idles during our database work.
                in_flight: tuple[list[tuple[RobotTask, Sequence[Appointment]]], list[Future]] | None = None
                try:
                    for start in range(0, len(groups), batch):
                        if should_stop():
                            break
                        chunk = groups[start : start + batch]
                        claimed = claim_many(session, system, chunk, run_id=run_id)
                        report.skipped += sum(len(g) for g in chunk) - sum(len(g) for _, g in claimed)
                        tasks = [build_task(system, rt, group, zone) for rt, group in claimed]
                        futures = [pool.submit(call_mango, client, campaign_id, t) for t in tasks]
                        if in_flight is not None:
                            _record_batch(session, report, *in_flight)
                            log_buffer.flush_into(session)
                            session.commit()
                            on_progress(report)
                        in_flight = (claimed, futures)
                finally:
                    if in_flight is not None:
                        _record_batch(session, report, *in_flight)
                    log_buffer.flush_into(session)
                    session.commit()
            finally:
                gc.unfreeze()  # the run's objects can be collected again
                if log_buffer.pending:
                    session.rollback()
                    log_buffer.flush_into(session)
                    session.commit()
    return report


class ExportProgress:
    """The live progress of one export run for «Серверные задачи» (the admins): found,
    exported (sent), failed and left, published through ari_app's event channel
    (clinic/progress.py: throttled, fail-open). Pass it as `export_day(on_progress=...)`
    and call `finish` once the run's row is written, which makes the page reload."""

    def __init__(self, publisher: progress.Publisher, task_id: int) -> None:
        self.publisher = publisher
        self.task_id = task_id
        self.started_at = datetime.now(UTC)
        self.started_mono = monotonic()

    def snapshot(self, report: ExportReport, *, done: bool = False) -> progress.Progress:
        handled = report.sent + report.failed
        left = 0 if done else max(0, report.found + report.resumed - handled - report.skipped)
        elapsed = monotonic() - self.started_mono
        rate = handled / elapsed if elapsed > 0 else 0.0
        return progress.Progress(
            "export", self.task_id, report.sent, report.failed, left, self.started_at, rate, done
        )

    def __call__(self, report: ExportReport) -> None:
        self.publisher.publish(self.snapshot(report), user_ids=set(), admins=True)

    def finish(self, report: ExportReport | None) -> None:
        self.publisher.publish(
            self.snapshot(report or ExportReport(), done=True), user_ids=set(), admins=True
        )


def _record_batch(
    session: Session,
    report: ExportReport,
    claimed: list[tuple[RobotTask, Sequence[Appointment]]],
    futures: list[Future],
) -> None:
    for (robot_task, group), future in zip(claimed, futures, strict=True):
        task_id, error = future.result()
        ids = [a.id for a in group]
        _count(report, record_outcome(session, robot_task, ids, task_id, error, resuming=False, commit=False))


def _count(report: ExportReport, outcome: SendOutcome) -> None:
    report.outcomes.append(outcome)
    if outcome.state in (ROBOT_SENT, "merged", ROBOT_UNKNOWN):
        report.sent += len(outcome.appointment_ids)
    else:
        report.failed += len(outcome.appointment_ids)


def send_appointment(
    sessions: sessionmaker[Session],
    appointment_id: int,
    *,
    options: ClientOptions | None = None,
) -> SendOutcome:
    """«Отправить голосовому роботу»: this appointment plus the patient's other unsent
    appointments that day (one task per number)."""
    with sessions() as session:
        from clinic.robot.systems import active_mango, check_connection

        appointment = session.get(Appointment, appointment_id)
        if appointment is None:
            return SendOutcome(None, "skipped", "Запись не найдена")
        sent_in = session.scalar(select(RobotTaskItem).where(RobotTaskItem.appointment_id == appointment_id))
        if sent_in is not None:
            rt = sent_in.robot_task
            return SendOutcome(
                rt.id, "skipped", f"Запись уже отправлена голосовому роботу ({rt.state_title.lower()})"
            )
        problem = eligibility_problem(appointment)
        if problem:
            return SendOutcome(None, "skipped", f"Отправить нельзя: {problem}")
        system = active_mango(session)
        if system is None or not system.campaign_id:
            return SendOutcome(
                None, "skipped", "Mango Office не настроен: заполните «Внешние информационные системы»"
            )
        with make_client(system, sessions, options) as client:
            if not field_ids(system):
                check = check_connection(session, system, sessions, options)
                session.commit()
                if not check.ok:
                    return SendOutcome(None, ROBOT_FAILED, check.message)
            same_phone = [
                a
                for a in session.scalars(candidate_query(appointment.starts_at.date())).unique()
                if a.patient.phone == appointment.patient.phone and eligibility_problem(a) is None
            ]
            group = [appointment] + [a for a in same_phone if a.id != appointment.id]
            group.sort(key=lambda a: (a.starts_at, a.id))
            robot_task = claim(session, system, group, source="manual", run_id=None)
            if robot_task is None:
                return SendOutcome(None, "skipped", "Запись уже отправляется голосовому роботу")
            return send(session, client, system, robot_task)
