"""Voice robot pages.

Blueprint `robot_admin` (admin only, checked on the server for every request):
  /admin/external-systems[/new|/<id>|/<id>/check]   «Внешние информационные системы»
  /admin/server-tasks[/<id>|/<id>/run]                «Серверные задачи»
  /admin/journal?service=TMangoOfficeThread           journal of server tasks
  /admin/exchange-log?owner=…                         «Журнал обмена»
The two logs are paged newest first by row id (?before=<id> for older rows, ?after=<id> for
newer ones), so rows written while someone reads never shift a page; filters ride along.
Blueprint `robot` (registrars and admins):
  /robot/appointments/<id>   «Отправить голосовому роботу» (GET shows, POST sends)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import joinedload

from clinic.clock import clinic_zone
from clinic.models import (
    Appointment,
    ExchangeLogEntry,
    ExternalSystem,
    JournalEntry,
    RobotTaskItem,
    ServerTask,
)
from clinic.models.robot import SERVER_TASK_KINDS, SERVER_TASK_SERVICES, TASK_MANGO_EXPORT
from clinic.robot import export
from clinic.robot.systems import (
    FIELD_ROLES,
    LABELS,
    SystemValidationError,
    check_connection,
    field_ids,
    field_names,
    save_system,
)
from webhooks.auth import require_admin
from webhooks.ui.db import ROW_ID, db

admin_bp = Blueprint("robot_admin", __name__, url_prefix="/admin")
admin_bp.before_request(require_admin)
bp = Blueprint("robot", __name__, url_prefix="/robot")

SYSTEM_FIELDS = (
    "name",
    "api_key",
    "api_salt",
    "campaign_id",
    "base_url",
    "webhook_secret",
    "webhook_ips",
    "digit_status",
    "rate_per_s",
    *(f"field_{role}" for role in FIELD_ROLES),
)
PAGE = 100  # rows per page of the journals
_DB_INT_MAX = 2**31 - 1  # a page anchor past this cannot be a row id


def _sessions():  # type: ignore[no-untyped-def]
    return current_app.extensions["mis_sessions"]


def _system_or_404(system_id: int) -> ExternalSystem:
    system = db().get(ExternalSystem, system_id)
    if system is None:
        abort(404)
    return system


def _system_values(system: ExternalSystem | None) -> dict[str, object]:
    if system is None:
        values: dict[str, object] = {"name": "Mango Office", "is_active": True, "digit_status": "1=1 2=2"}
        values["base_url"] = "https://app.mango-office.ru/vpbx/"
        values["rate_per_s"] = 5
        values.update({f"field_{role}": default for role, (_, default) in FIELD_ROLES.items()})
        return values
    values = {key: getattr(system, key) for key in SYSTEM_FIELDS if hasattr(system, key)}
    values["is_active"] = system.is_active
    values["campaign_id"] = system.campaign_id or ""
    values.update({f"field_{role}": name for role, name in field_names(system).items()})
    for secret in SECRET_FIELDS:
        values.pop(secret, None)  # never sent back to the browser
    return values


SECRET_FIELDS = ("api_key", "api_salt", "webhook_secret")


def masked(value: str | None) -> str:
    """«••••3f9a»: enough to recognise a stored secret, not enough to use it."""
    if not value:
        return ""
    return "••••" + (value[-4:] if len(value) >= 12 else "")


@admin_bp.get("/external-systems")
def systems():  # type: ignore[no-untyped-def]
    rows = db().scalars(select(ExternalSystem).order_by(ExternalSystem.id)).all()
    return render_template("robot/systems.html", systems=rows)


def _render_form(
    system: ExternalSystem | None, values: dict[str, object], errors: dict[str, str], code: int = 200
):  # type: ignore[no-untyped-def]
    ids = field_ids(system) if system else {}
    return (
        render_template(
            "robot/system_form.html",
            system=system,
            values=values,
            errors=errors,
            labels=LABELS,
            roles=FIELD_ROLES,
            ids=ids,
            salt_set=bool(system and system.api_salt),
            key_mask=masked(system.api_key if system else ""),
            secret_mask=masked(system.webhook_secret if system else ""),
        ),
        code,
    )


@admin_bp.get("/external-systems/new")
def system_new():  # type: ignore[no-untyped-def]
    return _render_form(None, _system_values(None), {})


@admin_bp.get(f"/external-systems/<{ROW_ID}:system_id>")
def system_edit(system_id: int):  # type: ignore[no-untyped-def]
    system = _system_or_404(system_id)
    return _render_form(system, _system_values(system), {})


def _form() -> dict[str, object]:
    data: dict[str, object] = {key: request.form.get(key, "") for key in SYSTEM_FIELDS}
    data["is_active"] = "is_active" in request.form
    data["webhook_secret_clear"] = "on" if "webhook_secret_clear" in request.form else ""
    return data


@admin_bp.post("/external-systems/new")
@admin_bp.post(f"/external-systems/<{ROW_ID}:system_id>")
def system_save(system_id: int | None = None):  # type: ignore[no-untyped-def]
    session = db()
    system = _system_or_404(system_id) if system_id is not None else None
    data = _form()
    try:
        system = save_system(session, system, data)
    except SystemValidationError as exc:
        session.rollback()
        values = {k: v for k, v in data.items() if k not in SECRET_FIELDS}
        return _render_form(system, values, exc.errors, 400)
    session.commit()
    flash("Внешняя система сохранена", "success")
    return redirect(url_for("robot_admin.system_edit", system_id=system.id))


@admin_bp.post(f"/external-systems/<{ROW_ID}:system_id>/check")
def system_check(system_id: int):  # type: ignore[no-untyped-def]
    session = db()
    system = _system_or_404(system_id)
    result = check_connection(session, system, _sessions())
    session.commit()
    flash(result.message, "success" if result.ok else "error")
    return redirect(url_for("robot_admin.system_edit", system_id=system.id))


# ---------------------------------------------------------------- server tasks


def _tasks_page(errors: dict[str, str], values: dict[str, str], status: int = 200):  # type: ignore[no-untyped-def]
    from clinic.robot.server_task import last_runs

    session = db()
    rows = session.scalars(select(ServerTask).order_by(ServerTask.id)).all()
    systems_ = session.scalars(select(ExternalSystem).order_by(ExternalSystem.id)).all()
    page = render_template(
        "robot/tasks.html",
        tasks=rows,
        systems=systems_,
        kinds=SERVER_TASK_KINDS,
        errors=errors,
        values=values,
        last_runs=last_runs(session),
    )
    return page, status


@admin_bp.get("/server-tasks")
def tasks():  # type: ignore[no-untyped-def]
    return _tasks_page({}, {})


def _task_form() -> dict[str, str]:
    return {
        "name": request.form.get("name", ""),
        "run_at": request.form.get("run_at", ""),
        "external_system_id": request.form.get("external_system_id", ""),
        "is_enabled": "on" if "is_enabled" in request.form else "",
        "poll_results": "on" if "poll_results" in request.form else "",
    }


@admin_bp.post("/server-tasks")
@admin_bp.post(f"/server-tasks/<{ROW_ID}:task_id>")
def task_save(task_id: int | None = None):  # type: ignore[no-untyped-def]
    from clinic.robot.server_task import validate_task

    session = db()
    task = session.get(ServerTask, task_id) if task_id is not None else None
    if task_id is not None and task is None:
        abort(404)
    data = _task_form()
    clean, errors = validate_task(data)
    if not errors and session.get(ExternalSystem, clean["external_system_id"]) is None:
        errors["external_system_id"] = "Выберите внешнюю систему"
    if errors:
        return _tasks_page(errors, data, 400)
    if task is None:
        task = ServerTask(kind=TASK_MANGO_EXPORT)
        session.add(task)
    for key, value in clean.items():
        setattr(task, key, value)
    session.commit()
    flash("Задача сохранена", "success")
    return redirect(url_for("robot_admin.tasks"))


@admin_bp.post(f"/server-tasks/<{ROW_ID}:task_id>/run")
def task_run(task_id: int):  # type: ignore[no-untyped-def]
    session = db()
    task = session.get(ServerTask, task_id)
    if task is None:
        abort(404)
    task.run_requested = True
    session.commit()
    flash("Запуск запрошен: задача выполнится при следующем проходе сервера задач", "success")
    return redirect(url_for("robot_admin.tasks"))


@dataclass(frozen=True)
class LogPage:
    """One page of a log, newest first; `newer`/`older` anchor the neighbouring pages."""

    rows: list[Any]
    total: int
    newer: int | None  # ?after=<id> shows the page above this one
    older: int | None  # ?before=<id> shows the page below


def _anchor(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= _DB_INT_MAX:
        return None  # anything else: the newest page
    return int(raw)


def _log_page(model: Any, filters: list[ColumnElement[bool]]) -> LogPage:
    session = db()
    query = select(model).where(*filters)
    before, after = _anchor("before"), _anchor("after")
    rows: list[Any] = []
    if after is not None:
        rows = list(session.scalars(query.where(model.id > after).order_by(model.id).limit(PAGE)))[::-1]
    if not rows:
        if before is not None and after is None:
            query = query.where(model.id < before)
        rows = list(session.scalars(query.order_by(model.id.desc()).limit(PAGE)))

    def exists(condition: ColumnElement[bool]) -> bool:
        return session.scalar(select(model.id).where(*filters, condition).limit(1)) is not None

    total = session.scalar(select(func.count()).select_from(model).where(*filters)) or 0
    newer = rows[0].id if rows and exists(model.id > rows[0].id) else None
    older = rows[-1].id if rows and exists(model.id < rows[-1].id) else None
    return LogPage(rows=rows, total=total, newer=newer, older=older)


@admin_bp.get("/journal")
def journal():  # type: ignore[no-untyped-def]
    service = request.args.get("service", "").strip()
    filters = [JournalEntry.service == service[:64]] if service else []
    return render_template(
        "robot/journal.html",
        page=_log_page(JournalEntry, filters),
        service=service,
        services=sorted(set(SERVER_TASK_SERVICES.values())),
        filter_args={"service": service} if service else {},
    )


@admin_bp.get("/exchange-log")
def exchange_log():  # type: ignore[no-untyped-def]
    owner = request.args.get("owner", "").strip()
    filters = [ExchangeLogEntry.owner.contains(owner[:100], autoescape=True)] if owner else []
    return render_template(
        "robot/exchange_log.html",
        page=_log_page(ExchangeLogEntry, filters),
        owner=owner,
        filter_args={"owner": owner} if owner else {},
    )


# ---------------------------------------------------------------- manual send


def _appointment_or_404(appointment_id: int) -> Appointment:
    appointment = db().scalar(
        select(Appointment)
        .options(
            joinedload(Appointment.patient), joinedload(Appointment.doctor), joinedload(Appointment.service)
        )
        .where(Appointment.id == appointment_id)
    )
    if appointment is None:
        abort(404)
    return appointment


@bp.get(f"/appointments/<{ROW_ID}:appointment_id>")
def appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    appt = _appointment_or_404(appointment_id)
    item = db().scalar(select(RobotTaskItem).where(RobotTaskItem.appointment_id == appointment_id))
    return render_template(
        "robot/send.html",
        appointment=appt,
        robot_task=item.robot_task if item else None,
        problem=export.eligibility_problem(appt),
    )


@bp.post(f"/appointments/<{ROW_ID}:appointment_id>")
def send(appointment_id: int):  # type: ignore[no-untyped-def]
    _appointment_or_404(appointment_id)
    db().rollback()  # the send uses its own sessions; nothing pending here
    outcome = export.send_appointment(_sessions(), appointment_id)
    ok = outcome.state in ("sent", "merged")
    text = {
        "sent": f"Отправлено голосовому роботу: {outcome.message}",
        "merged": f"Отправлено голосовому роботу: {outcome.message}",
        "unknown": f"Отправлено, но {outcome.message}",
    }.get(outcome.state, outcome.message)
    flash(text, "success" if ok else "error")
    return redirect(url_for("robot.appointment", appointment_id=appointment_id))


def _clinic_dt(value: datetime | None) -> str:
    """A stored UTC moment in the clinic's time zone: 22.05.2025 12:10:49."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{value.astimezone(clinic_zone(db())):%d.%m.%Y %H:%M:%S}"


def register(app: Flask) -> None:
    """Blueprints and menu entries; called from webhooks.ui.register_ui."""
    from webhooks.ui.menu import GROUP_ADMIN, add_appointment_action, add_menu_item

    app.register_blueprint(admin_bp)
    app.register_blueprint(bp)
    app.jinja_env.filters["clinic_dt"] = _clinic_dt
    add_menu_item(
        app, "Внешние информационные системы", "robot_admin.systems", admin_only=True, group=GROUP_ADMIN
    )
    add_menu_item(app, "Серверные задачи", "robot_admin.tasks", admin_only=True, group=GROUP_ADMIN)
    add_menu_item(app, "Журнал обмена", "robot_admin.exchange_log", admin_only=True, group=GROUP_ADMIN)
    add_appointment_action(app, "Отправить голосовому роботу", "robot.appointment")
