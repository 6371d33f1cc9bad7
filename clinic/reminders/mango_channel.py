"""The Mango Office robot as a reminder channel.

Dispatch: the due appointments of one phone and day go into one Mango task (Mango allows one
active task per number: 5109) exactly the way the daily export sends them
(clinic/robot/export.py: the task row and its items committed first, unique per appointment,
then `task/add`, its outcome recorded; a 5109 joins the number's task already sent). An
appointment already in a Mango task (the daily export, another rule) is not sent again: the
patient gets one call.

Withdraw: a Mango task sent and not yet answered whose every appointment was confirmed
elsewhere, cancelled or moved is deleted at Mango (`task/delete`), so the robot does not
call about it; its reminders become «Остановлено». A moved appointment leaves the deleted
task, so a rule can send it again for its new time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from clinic.clock import clinic_zone
from clinic.mango import MangoError, NotFoundError
from clinic.models import STATUS_BOOKED, Appointment, ExternalSystem, RobotTask, RobotTaskItem
from clinic.models.reminders import JOB_FAILED, JOB_PLANNED, JOB_SENT, JOB_SKIPPED, JOB_STOPPED, ReminderJob
from clinic.models.robot import ROBOT_DELETED, ROBOT_FAILED, ROBOT_PENDING, ROBOT_SENT, ROBOT_UNKNOWN
from clinic.reminders.channels import CHANNEL_MANGO, Channel, Context
from clinic.robot import export
from clinic.robot.systems import ClientOptions, active_mango, check_connection, field_ids, make_client

NOT_SET_UP = "Mango Office не настроен: заполните «Внешние информационные системы»"
RETRY = timedelta(minutes=10)
SOURCE = "reminder"  # robot_tasks.source of the tasks reminder rules made
LEFTOVER_AFTER = timedelta(minutes=1)
WITHDRAW_DAYS = 3  # tasks older than this were called long ago


def _options(ctx: Context) -> ClientOptions | None:
    found = ctx.options.get(CHANNEL_MANGO)
    return found if isinstance(found, ClientOptions) else None


def dispatch(ctx: Context, job_ids: list[int]) -> None:
    now = ctx.clock()
    with ctx.sessions() as session:
        jobs = list(
            session.scalars(
                select(ReminderJob)
                .where(ReminderJob.id.in_(job_ids), ReminderJob.state == JOB_PLANNED)
                .order_by(ReminderJob.id)
            )
        )
        system = active_mango(session)
        if system is None or not system.campaign_id:  # never dropped: the ttl ends it
            for job in jobs:
                job.not_before, job.note = now + RETRY, NOT_SET_UP
            session.commit()
            return
        groups: dict[tuple[str, object], list[tuple[ReminderJob, Appointment]]] = defaultdict(list)
        for job in jobs:
            appointment = session.scalar(
                select(Appointment)
                .options(
                    joinedload(Appointment.patient),
                    joinedload(Appointment.doctor),
                    joinedload(Appointment.service),
                )
                .where(Appointment.id == job.appointment_id)
            )
            assert appointment is not None
            sent_in = session.scalar(
                select(RobotTaskItem.robot_task_id).where(RobotTaskItem.appointment_id == appointment.id)
            )
            if sent_in is not None:
                job.state, job.robot_task_id, job.done_at = JOB_SKIPPED, sent_in, now
                job.note = "Запись уже отправлена голосовому роботу Mango: второй звонок не нужен"
            elif problem := export.eligibility_problem(appointment):
                job.state, job.note, job.done_at = JOB_SKIPPED, f"Роботу не отправлено: {problem}"[:300], now
            else:
                groups[(appointment.patient.phone or "", appointment.starts_at.date())].append(
                    (job, appointment)
                )
        session.commit()
        if not groups:
            return
        zone = clinic_zone(session)
        with make_client(system, ctx.sessions, _options(ctx)) as client:
            if not field_ids(system):
                check = check_connection(session, system, ctx.sessions, _options(ctx), client=client)
                session.commit()
                if not check.ok:
                    for group in groups.values():
                        for job, _a in group:
                            job.not_before, job.note = now + RETRY, check.message[:300]
                    session.commit()
                    return
            for group in groups.values():
                _send_group(session, client, system, group, zone, now)


def _send_group(
    session: Session, client: object, system: ExternalSystem, group: list, zone: object, now: object
) -> None:  # type: ignore[type-arg]
    """One Mango task for one phone's appointments of a day (claim committed first)."""
    group.sort(key=lambda pair: (pair[1].starts_at, pair[1].id))
    first_job, first = group[0]
    robot_task = RobotTask(
        external_system_id=system.id,
        campaign_id=system.campaign_id,
        phone=first.patient.phone,
        # unique, and never the export's plain appointment id: a moved visit can be sent anew
        ref=f"{first.id}-r{first_job.id}",
        state=ROBOT_PENDING,
        source=SOURCE,
        run_id=None,
        error="",
        items=[RobotTaskItem(appointment_id=a.id, starts_at=a.starts_at) for _j, a in group],
    )
    session.add(robot_task)
    try:
        session.commit()
    except IntegrityError:  # the export or another sender claimed one of them meanwhile
        session.rollback()
        for job, _a in group:
            job.not_before = now  # checked again next run: then it finds the task it joined
        session.commit()
        return
    for job, _a in group:
        job.state, job.robot_task_id, job.done_at, job.note = (
            JOB_SENT,
            robot_task.id,
            now,
            "Задача отправляется",
        )
    session.commit()
    outcome = export.send(session, client, system, robot_task, appointments=[a for _j, a in group], zone=zone)  # type: ignore[arg-type]
    task_id = outcome.robot_task_id or robot_task.id
    for job, _a in group:
        job.robot_task_id = task_id
        if outcome.state == ROBOT_FAILED:
            job.state, job.note = JOB_FAILED, f"Mango Office: {outcome.message}"[:300]
        elif outcome.state == ROBOT_PENDING:
            job.note = f"Задача Mango не отправлена, будет отправлена повторно: {outcome.message}"[:300]
        else:
            job.note = f"Робот Mango: {outcome.message}"[:300]
    session.commit()


_UNSETTLED_ITEM = (
    select(RobotTaskItem.id)
    .join(Appointment, Appointment.id == RobotTaskItem.appointment_id)
    .where(
        RobotTaskItem.robot_task_id == RobotTask.id,
        Appointment.status == STATUS_BOOKED,
        Appointment.confirmation_status == "",
        Appointment.starts_at == RobotTaskItem.starts_at,
    )
    .exists()
)


def withdraw(ctx: Context) -> int:
    """Delete at Mango the pending tasks nobody needs to be called for any more."""
    now = ctx.clock()
    stopped = 0
    with ctx.sessions() as session:
        tasks = list(
            session.scalars(
                select(RobotTask)
                .where(
                    RobotTask.state == ROBOT_SENT,
                    RobotTask.result_status.is_(None),
                    RobotTask.task_id.is_not(None),
                    RobotTask.created_at >= now - timedelta(days=WITHDRAW_DAYS),
                    exists().where(RobotTaskItem.robot_task_id == RobotTask.id),
                    ~_UNSETTLED_ITEM,
                )
                .order_by(RobotTask.id)
            )
        )
        leftovers = list(
            session.scalars(
                select(RobotTask)
                .where(
                    RobotTask.source == SOURCE,
                    RobotTask.state.in_((ROBOT_PENDING, ROBOT_UNKNOWN)),
                    RobotTask.created_at < now - LEFTOVER_AFTER,
                    RobotTask.created_at >= now - timedelta(days=WITHDRAW_DAYS),
                )
                .order_by(RobotTask.id)
            )
        )
        clients: dict[int, object] = {}
        try:
            for task in leftovers:  # a run killed mid-send, a lost answer: settled as the export does
                system = session.get(ExternalSystem, task.external_system_id)
                if system is None:
                    continue
                if system.id not in clients:
                    clients[system.id] = make_client(system, ctx.sessions, _options(ctx))
                export.send(
                    session, clients[system.id], system, task, resuming=True, zone=clinic_zone(session)
                )  # type: ignore[arg-type]
            for task in tasks:
                system = session.get(ExternalSystem, task.external_system_id)
                if system is None:
                    continue
                if system.id not in clients:
                    clients[system.id] = make_client(system, ctx.sessions, _options(ctx))
                stopped += _withdraw_task(session, clients[system.id], task, now)
        finally:
            for client in clients.values():
                client.close()  # type: ignore[attr-defined]
    return stopped


def _withdraw_task(session: Session, client: object, task: RobotTask, now: object) -> int:
    try:
        client.delete_task(task.campaign_id, task.task_id)  # type: ignore[attr-defined]
    except NotFoundError:
        pass  # gone already (called and finished, or deleted by hand)
    except MangoError as exc:  # e.g. 5111: the robot is calling right now; its answer will come
        task.error = f"task/delete: {exc.code} {exc.message}"[:500]
        session.commit()
        return 0
    rows = session.execute(
        select(
            RobotTaskItem.id,
            Appointment.status,
            Appointment.confirmation_status,
            Appointment.starts_at,
            RobotTaskItem.starts_at.label("sent_for"),
        )
        .join(Appointment, Appointment.id == RobotTaskItem.appointment_id)
        .where(RobotTaskItem.robot_task_id == task.id)
    ).all()
    reasons = []
    for r in rows:
        if r.status != STATUS_BOOKED or r.confirmation_status == "cancelled":
            reasons.append("отменена")
        elif r.confirmation_status:
            reasons.append("подтверждена")
        else:
            reasons.append("перенесена")
    why = ", ".join(dict.fromkeys(reasons))
    task.state = ROBOT_DELETED
    task.error = f"Удалена из Mango Office: запись {why} до звонка робота"
    note = f"Задача Mango удалена: запись {why} до звонка"
    done = session.execute(
        update(ReminderJob)
        .where(ReminderJob.robot_task_id == task.id, ReminderJob.state == JOB_SENT)
        .values(state=JOB_STOPPED, note=note, done_at=now)
        .execution_options(synchronize_session=False)
    )
    moved = [
        r.id
        for r in rows
        if r.status == STATUS_BOOKED and not r.confirmation_status and r.starts_at != r.sent_for
    ]
    if moved:  # free for a reminder of the new time
        session.execute(delete(RobotTaskItem).where(RobotTaskItem.id.in_(moved)))
    session.commit()
    return done.rowcount or 0


def _problem(session: Session) -> str | None:
    system = active_mango(session)
    return None if system is not None and system.campaign_id else NOT_SET_UP


CHANNEL = Channel(
    key=CHANNEL_MANGO,
    title="Робот Mango Office",
    needs_template=False,
    dispatch=dispatch,
    withdraw=withdraw,
    problem=_problem,
)
