"""Blueprint `schedule`: «Планировщик записи на прием», one day by doctor."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from clinic.models import EMPLOYEE_ROLES, Appointment, Employee
from webhooks.ui.clinic_time import clinic_now
from webhooks.ui.db import db

bp = Blueprint("schedule", __name__)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return redirect(url_for("schedule.day"))


def _parse_day(raw: str | None, today: date) -> date:
    if not raw:
        return today
    try:
        return date.fromisoformat(raw)
    except ValueError:
        flash("Некорректная дата, показан сегодняшний день", "error")
        return today


def _parse_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 12 else None


@bp.get("/schedule")
def day():  # type: ignore[no-untyped-def]
    session = db()
    today = clinic_now(session).date()
    shown = _parse_day(request.args.get("date"), today)
    doctor_id = _parse_id(request.args.get("doctor"))
    start = datetime.combine(shown, datetime.min.time())
    query = (
        select(Appointment)
        .options(
            joinedload(Appointment.patient),
            joinedload(Appointment.doctor),
            joinedload(Appointment.cabinet),
            joinedload(Appointment.service),
        )
        .where(Appointment.starts_at >= start, Appointment.starts_at < start + timedelta(days=1))
        .order_by(Appointment.starts_at, Appointment.id)
    )
    if doctor_id is not None:
        query = query.where(Appointment.doctor_id == doctor_id)
    by_doctor: dict[int, list[Appointment]] = defaultdict(list)
    doctors: dict[int, Employee] = {}
    for appointment in db().scalars(query).unique():
        by_doctor[appointment.doctor_id].append(appointment)
        doctors[appointment.doctor_id] = appointment.doctor
    columns = sorted(
        ((doctors[key], items) for key, items in by_doctor.items()),
        key=lambda pair: (pair[0].last_name, pair[0].first_name, pair[0].id),
    )
    all_doctors = session.scalars(
        select(Employee).where(Employee.is_active.is_(True)).order_by(Employee.last_name, Employee.first_name)
    ).all()
    return render_template(
        "schedule/day.html",
        day=shown,
        today=today,
        prev_day=shown - timedelta(days=1),
        next_day=shown + timedelta(days=1),
        columns=columns,
        total=sum(len(items) for _, items in columns),
        all_doctors=all_doctors,
        doctor_id=doctor_id,
        employee_roles=EMPLOYEE_ROLES,
    )
