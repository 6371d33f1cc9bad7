"""Server task «Отправка сведений в Mango Office» (service TMangoOfficeThread): the worker
runs it daily at its set time (or at once on «Запустить сейчас»), sends the next day's
appointments, and writes the manual's journal lines. A run killed half-way is resumed by
the next worker tick; what was already sent is never sent again (see export.py).

Also here: the pull fallback (campaign-report → status) and `task/delete` for appointments
cancelled after export.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic import progress
from clinic.clock import clinic_now
from clinic.inputs import parse_id
from clinic.mango import MangoError, NotFoundError
from clinic.models import (
    STATUS_CANCELLED,
    ExternalSystem,
    JournalEntry,
    RobotTask,
    ServerTask,
    ServerTaskRun,
    utcnow,
)
from clinic.models.robot import (
    ROBOT_DELETED,
    ROBOT_SENT,
    RUN_DONE,
    RUN_FAILED,
    RUN_RUNNING,
    SERVER_TASK_KINDS,
    SERVER_TASK_SERVICES,
    TASK_MANGO_EXPORT,
)
from clinic.robot.export import ExportProgress, export_day
from clinic.robot.status import SOURCE_REPORT, apply_status
from clinic.robot.systems import ClientOptions, make_client, parse_digit_status
from clinic.worker.jobs import Job, JobContext

log = logging.getLogger(__name__)

SERVICE = SERVER_TASK_SERVICES[TASK_MANGO_EXPORT]
TASK_TITLE = SERVER_TASK_KINDS[TASK_MANGO_EXPORT]


def journal(sessions: sessionmaker[Session], run_id: int | None, message: str, level: str = "info") -> None:
    with sessions() as session, session.begin():
        session.add(JournalEntry(service=SERVICE, run_id=run_id, message=message, level=level))


def parse_hhmm(raw: str) -> tuple[int, int] | None:
    hh, sep, mm = raw.strip().partition(":")
    if not sep or not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()) or len(mm) != 2:
        return None
    h, m = int(hh), int(mm)
    return (h, m) if 0 <= h < 24 and 0 <= m < 60 else None


def validate_task(data: dict[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    errors: dict[str, str] = {}
    clean: dict[str, object] = {"name": (data.get("name") or TASK_TITLE).strip()[:200] or TASK_TITLE}
    run_at = (data.get("run_at") or "").strip()
    if parse_hhmm(run_at) is None:
        errors["run_at"] = "Время запуска в формате ЧЧ:ММ, например 09:00"
    else:
        h, m = parse_hhmm(run_at)  # type: ignore[misc]
        clean["run_at"] = f"{h:02d}:{m:02d}"
    system_id = parse_id(data.get("external_system_id") or "")
    if system_id is None:
        errors["external_system_id"] = "Выберите внешнюю систему"
    else:
        clean["external_system_id"] = system_id
    clean["is_enabled"] = str(data.get("is_enabled", "")).lower() in ("1", "on", "true", "yes")
    clean["poll_results"] = str(data.get("poll_results", "")).lower() in ("1", "on", "true", "yes")
    return clean, errors


def is_due(task: ServerTask, now_local: datetime) -> bool:
    if not task.is_enabled:
        return False
    if task.run_requested:
        return True
    at = parse_hhmm(task.run_at)
    if at is None:
        return False
    return task.last_run_date != now_local.date() and (now_local.hour, now_local.minute) >= at


def unfinished_run(session: Session, task_id: int) -> ServerTaskRun | None:
    return session.scalar(
        select(ServerTaskRun)
        .where(ServerTaskRun.task_id == task_id, ServerTaskRun.state == RUN_RUNNING)
        .order_by(ServerTaskRun.id)
    )


def run_export_task(
    sessions: sessionmaker[Session],
    task_id: int,
    *,
    options: ClientOptions | None = None,
    publisher: progress.Publisher | None = None,
) -> ServerTaskRun | None:
    """One run (or the resumption of a killed one). Returns the run row. With a publisher,
    the admins' «Серверные задачи» shows the run's live progress."""
    with sessions() as session:
        task = session.get(ServerTask, task_id)
        if task is None or task.external_system_id is None:
            return None
        now_local = clinic_now(session)
        run = unfinished_run(session, task.id)
        resumed = run is not None
        if run is None:
            run = ServerTaskRun(task_id=task.id, target_date=now_local.date() + timedelta(days=1))
            session.add(run)
        # the schedule is marked first: a crash must not start a fresh run every tick;
        # the unfinished run row is what brings the work back
        task.last_run_date = now_local.date()
        task.run_requested = False
        session.commit()
        run_id, target, system_id = run.id, run.target_date, task.external_system_id
    if resumed:
        journal(sessions, run_id, "Возобновляю прерванный поток")
    else:
        journal(sessions, run_id, "Поток создан")
    journal(sessions, run_id, "Запускаю поток")
    journal(sessions, run_id, f"Начата отправка сведений в Mango Office. Дата приёма: {target:%d.%m.%Y}")
    state = RUN_DONE
    tracker = ExportProgress(publisher, task_id) if publisher is not None else None
    try:
        report = export_day(
            sessions,
            system_id,
            target,
            run_id=run_id,
            options=options,
            journal=lambda message: journal(sessions, run_id, message),
            on_progress=tracker or (lambda _report: None),
        )
    except Exception as exc:  # journalled for the admin, then re-raised state as failed
        log.exception("отправка в Mango Office не удалась")
        journal(sessions, run_id, f"Ошибка: {exc}", "error")
        state = RUN_FAILED
        report = None
    else:
        journal(
            sessions,
            run_id,
            f"Отправлено записей: {report.sent}, ошибок: {report.failed}, пропущено: {report.skipped}",
            "info" if not report.failed else "warning",
        )
    journal(sessions, run_id, "Остановка отправки сведений в Mango Office.")
    with sessions() as session, session.begin():
        run = session.get(ServerTaskRun, run_id)
        assert run is not None
        run.state = state
        run.finished_at = utcnow()
        if report is not None:
            run.found, run.sent, run.failed = report.found, report.sent, report.failed
    if tracker is not None:
        tracker.finish(report)  # after the run's row: the page reloads to it
    journal(sessions, run_id, "Поток разрушен")
    return run


def export_tick(
    sessions: sessionmaker[Session],
    *,
    options: ClientOptions | None = None,
    publisher: progress.Publisher | None = None,
) -> list[int]:
    """Run every due (or interrupted) export task; returns the run ids."""
    with sessions() as session:
        now_local = clinic_now(session)
        tasks = session.scalars(select(ServerTask).where(ServerTask.kind == TASK_MANGO_EXPORT)).all()
        due = [t.id for t in tasks if is_due(t, now_local) or unfinished_run(session, t.id) is not None]
    runs = []
    for task_id in due:
        run = run_export_task(sessions, task_id, options=options, publisher=publisher)
        if run is not None:
            runs.append(run.id)
    return runs


# ---------------------------------------------------------------- results and deletions


def poll_results(
    sessions: sessionmaker[Session], *, options: ClientOptions | None = None, since_days: int = 3
) -> dict[str, int]:
    """Pull fallback: the campaign report's digit → status for tasks no callback settled;
    and `task/delete` for sent tasks whose appointments were all cancelled since."""
    counts = {"applied": 0, "deleted": 0}
    with sessions() as session:
        systems = session.scalars(select(ExternalSystem).where(ExternalSystem.is_active.is_(True))).all()
        wanted = {
            t.external_system_id
            for t in session.scalars(select(ServerTask).where(ServerTask.poll_results.is_(True))).all()
        }
        for system in systems:
            if system.id not in wanted or not system.campaign_id:
                continue
            open_tasks = session.scalars(
                select(RobotTask).where(
                    RobotTask.external_system_id == system.id,
                    RobotTask.state == ROBOT_SENT,
                    RobotTask.result_status.is_(None),
                    RobotTask.task_id.is_not(None),
                    RobotTask.created_at >= utcnow() - timedelta(days=since_days),
                )
            ).all()
            if not open_tasks:
                continue
            mapping = parse_digit_status(system.digit_status)
            with make_client(system, sessions, options) as client:
                counts["deleted"] += _delete_cancelled(session, client, open_tasks)
                pending = [t for t in open_tasks if t.state == ROBOT_SENT]
                if not pending:
                    continue
                try:
                    report = client.campaign_report(system.campaign_id)
                except MangoError as exc:
                    journal(sessions, None, f"Отчёт кампании не получен: {exc.message}", "warning")
                    continue
                for robot_task in pending:
                    digit = report.digit(robot_task.task_id or 0)
                    status = mapping.get(digit or "")
                    if status is None:
                        continue
                    outcome = apply_status(session, robot_task, status, SOURCE_REPORT)
                    session.commit()
                    counts["applied"] += len(outcome.changed)
    return counts


def _delete_cancelled(session: Session, client, tasks: list[RobotTask]) -> int:  # type: ignore[no-untyped-def]
    deleted = 0
    for robot_task in tasks:
        appointments = [item.appointment_id for item in robot_task.items]
        from clinic.models import Appointment

        statuses = {session.get(Appointment, a).status for a in appointments}  # type: ignore[union-attr]
        if statuses != {STATUS_CANCELLED}:
            continue
        try:
            client.delete_task(robot_task.campaign_id, robot_task.task_id)
        except NotFoundError:
            pass  # gone already
        except MangoError as exc:
            robot_task.error = f"task/delete: {exc.code} {exc.message}"
            session.commit()
            continue
        robot_task.state = ROBOT_DELETED
        session.commit()
        deleted += 1
    return deleted


def _export_job(ctx: JobContext) -> None:
    pbx = ctx.config.pbx
    export_tick(ctx.sessions, publisher=progress.publisher(pbx.control_url, pbx.control_token))


def _results_job(ctx: JobContext) -> None:
    poll_results(ctx.sessions)


def jobs() -> list[Job]:
    return [
        Job("mango_export", 30.0, _export_job),
        Job("mango_results", 600.0, _results_job),
    ]


def last_runs(session: Session) -> dict[int, ServerTaskRun]:
    """Each task's latest run («Последний запуск»: when it started and how it ended)."""
    latest = select(ServerTaskRun.task_id, func.max(ServerTaskRun.id).label("run_id")).group_by(
        ServerTaskRun.task_id
    )
    ids = [row.run_id for row in session.execute(latest)]
    runs = session.scalars(select(ServerTaskRun).where(ServerTaskRun.id.in_(ids))).all() if ids else []
    return {run.task_id: run for run in runs}


def today(session: Session) -> date:
    return clinic_now(session).date()
