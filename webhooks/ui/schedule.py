"""Blueprint `schedule`: «Планировщик записи на прием», one day as a time grid by doctor,
and the registrar's actions on it: «Новый прием», «Перенести», «Подтвердить запись»,
«Отменить запись».

Every change is a POST with the CSRF token, checked by the same booking rules as the МИС's
REST API (clinic.services.schedule) plus the scheduler's own: the time lies inside the day's
grid, and a cabinet booked twice is reported. A refused change re-renders its form with the
Russian reasons and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from sqlalchemy import select
from werkzeug.wrappers import Response

from clinic.inputs import parse_id
from clinic.models import EMPLOYEE_ROLES, Appointment, Cabinet, Employee, Patient, Service
from clinic.phones import display as phone_display
from clinic.services import ValidationError
from clinic.services.schedule import (
    FREE_STATUSES,
    SOURCE_REGISTRAR,
    NotFoundError,
    appointments_for_day,
    cancel_appointment,
    confirm_appointment,
    create_appointment,
    update_appointment,
)
from clinic.services.schedule.grid import cabinet_overlaps, check_in_grid, grid_for
from webhooks.ui.clinic_time import clinic_now
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.formatting import ru_date
from webhooks.ui.patient_search import MIN_QUERY, search_patients
from webhooks.ui.schedule_board import board_doctors, build_board

bp = Blueprint("schedule", __name__)

CANCEL_REASONS = ("По просьбе пациента", "Заболевание", "Болезнь врача", "Пациент записан повторно")
PATIENTS_SHOWN = 20
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(:00)?")
# Form field -> the service's field whose message belongs under it.
_FIELD_OF = {"patient_id": "patient", "starts_at": "when", "status": "form", "": "form"}


@bp.app_template_filter("whole_words")
def whole_words(text: str | None) -> Markup:
    """Text whose lines break only at spaces: a hyphenated word («врача-невролога») is kept
    whole too, where the browser would otherwise break it after the hyphen."""
    words = (text or "").split(" ")
    return Markup(" ").join(
        Markup('<span class="nw">{}</span>').format(word) if "-" in word else escape(word) for word in words
    )


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return redirect(url_for("schedule.day"))


# --------------------------------------------------------------------------- the day board


def _parse_day(raw: str | None, today: date) -> date:
    if not raw:
        return today
    try:
        shown = date.fromisoformat(raw)
    except ValueError:
        shown = None
    if shown is None or not 2000 <= shown.year <= 2099:
        flash("Некорректная дата, показан сегодняшний день", "error")
        return today
    return shown


def _parse_id(raw: str | None) -> int | None:
    return parse_id(raw) if raw else None  # ASCII digits only: "²".isdigit() is True


@bp.get("/schedule")
def day():  # type: ignore[no-untyped-def]
    session = db()
    now = clinic_now(session)
    shown = _parse_day(request.args.get("date"), now.date())
    doctor_id = _parse_id(request.args.get("doctor"))
    everyone = appointments_for_day(session, shown)
    doctors = board_doctors(session, everyone, doctor_id)
    if doctor_id is not None and not doctors:
        doctor_id = None  # an unknown doctor in the link: show everyone
        doctors = board_doctors(session, everyone, None)
    shown_ids = {doctor.id for doctor in doctors}
    appointments = [a for a in everyone if a.doctor_id in shown_ids]
    board = build_board(grid_for(session, shown), doctors, appointments, now)
    return render_template(
        "schedule/day.html",
        day=shown,
        today=now.date(),
        prev_day=shown.fromordinal(shown.toordinal() - 1),
        next_day=shown.fromordinal(shown.toordinal() + 1),
        board=board,
        total=sum(1 for a in appointments if a.status not in FREE_STATUSES),
        cancelled=sum(1 for a in appointments if a.status == "cancelled"),
        all_doctors=_active_doctors(),
        doctor_id=doctor_id,
        employee_roles=EMPLOYEE_ROLES,
        # a free slot's link is this plus its doctor and time: built once, not per slot
        # (url_for for each of a day's few hundred slots was a third of the page's time)
        slot_url=url_for("schedule.new", date=shown.isoformat(), back_doctor=doctor_id),
    )


def _active_doctors() -> list[Employee]:
    query = select(Employee).where(Employee.is_active.is_(True))
    return list(db().scalars(query.order_by(Employee.last_name, Employee.first_name, Employee.id)))


# --------------------------------------------------------------------------- form helpers


def _appointment_or_404(appointment_id: int) -> Appointment:
    appt = db().get(Appointment, appointment_id)
    if appt is None:
        abort(404)
    return appt


def _back_to(appt: Appointment) -> Response:
    """The day of `appt` on the board (keeping the doctor filter), scrolled to it."""
    doctor = _parse_id(request.form.get("back_doctor"))
    url = url_for("schedule.day", date=appt.starts_at.date().isoformat(), doctor=doctor)
    return redirect(f"{url}#appointment-{appt.id}")


def _starts_at(form: Mapping[str, str], errors: dict[str, str]) -> str | None:
    """The ISO time from the date and time inputs, or a Russian reason in `errors["when"]`."""
    raw_date, raw_time = form.get("date", "").strip(), form.get("time", "").strip()
    if not raw_date or not raw_time:
        errors["when"] = "Укажите дату и время приёма"
        return None
    try:
        day_ = date.fromisoformat(raw_date)
    except ValueError:
        errors["when"] = "Некорректная дата приёма"
        return None
    match = _TIME.fullmatch(raw_time)
    if match is None:
        errors["when"] = "Некорректное время приёма: укажите часы и минуты, например 09:30"
        return None
    return datetime.combine(day_, time(int(match[1]), int(match[2]))).isoformat(timespec="minutes")


def _form_errors(exc: ValidationError) -> dict[str, str]:
    return {_FIELD_OF.get(key, key): message for key, message in exc.errors.items()}


def _choices() -> dict[str, Any]:
    session = db()
    return {
        "doctors": _active_doctors(),
        "services": session.scalars(
            select(Service).where(Service.is_active.is_(True)).order_by(Service.name, Service.id)
        ).all(),
        "cabinets": session.scalars(
            select(Cabinet).where(Cabinet.is_active.is_(True)).order_by(Cabinet.number, Cabinet.id)
        ).all(),
        "cancel_reasons": CANCEL_REASONS,
    }


def _warn_cabinet(appt: Appointment) -> None:
    for other in cabinet_overlaps(db(), appt):
        flash(
            f"Внимание: в кабинете {other.cabinet.number if other.cabinet else ''} в это время уже "
            f"приём {other.doctor.short_name} ({other.starts_at:%H:%M}, пациент {other.patient.full_name})",
            "warning",
        )


def _when(appt: Appointment) -> str:
    return f"{ru_date(appt.starts_at)} {appt.starts_at:%H:%M}"


# --------------------------------------------------------------------------- «Новый прием»


_NEW_FIELDS = (
    "patient_id", "q", "doctor_id", "date", "time", "service_id", "cabinet_id", "duration_min", "extra_info",
)  # fmt: skip


def _render_new(values: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Any:
    query = (values.get("q") or "").strip()[:100]
    found = search_patients(db(), query, PATIENTS_SHOWN) if query else []
    chosen_id = _parse_id(values.get("patient_id"))
    chosen = db().get(Patient, chosen_id) if chosen_id is not None else None
    if chosen is not None and chosen not in found:
        found.insert(0, chosen)
    return (
        render_template(
            "schedule/new.html",
            values=values,
            errors=errors,
            patients=found,
            query=query,
            too_short=0 < len(query) < MIN_QUERY,
            **_choices(),
        ),
        status,
    )


@bp.get("/schedule/new")
def new():  # type: ignore[no-untyped-def]
    values = {name: request.args.get(name, "") for name in _NEW_FIELDS}
    if not values["date"]:
        values["date"] = clinic_now(db()).date().isoformat()
    return _render_new(values, {})


@bp.post("/schedule/new")
def create():  # type: ignore[no-untyped-def]
    session = db()
    form = {name: request.form.get(name, "") for name in _NEW_FIELDS}
    errors: dict[str, str] = {}
    if not form["patient_id"]:
        errors["patient"] = "Выберите пациента: найдите его по фамилии или телефону"
    if not form["doctor_id"]:
        errors["doctor_id"] = "Выберите врача"
    starts_at = _starts_at(form, errors)
    if errors:
        return _render_new(form, errors, 422)
    data: dict[str, Any] = {
        "patient_id": form["patient_id"],
        "doctor_id": form["doctor_id"],
        "service_id": form["service_id"],
        "cabinet_id": form["cabinet_id"],
        "starts_at": starts_at,
        "extra_info": form["extra_info"],
    }
    if form["duration_min"].strip():
        data["duration_min"] = form["duration_min"]
    try:
        appt = create_appointment(session, data, forms=True)
        check_in_grid(session, appt)
    except ValidationError as exc:
        session.rollback()
        return _render_new(form, _form_errors(exc), 422)
    session.commit()
    who = f"{appt.patient.full_name} на {_when(appt)}, врач {appt.doctor.short_name}"
    flash(f"Пациент записан: {who}", "success")
    _warn_cabinet(appt)
    return _back_to(appt)


@bp.get("/schedule/patients")
def patients():  # type: ignore[no-untyped-def]
    """Patients for the «Новый прием» search, as JSON (the form also works without it)."""
    query = request.args.get("q", "").strip()[:100]
    found = search_patients(db(), query, PATIENTS_SHOWN)
    return jsonify(
        patients=[
            {
                "id": p.id,
                "name": p.full_name,
                "birth_date": ru_date(p.birth_date),
                "phone": phone_display(p.phone) if p.phone else "",
            }
            for p in found
        ],
        too_short=0 < len(query) < MIN_QUERY,
    )


# --------------------------------------------------------------------------- «Перенести»


_MOVE_FIELDS = ("doctor_id", "date", "time", "cabinet_id")


def _move_values(appt: Appointment) -> dict[str, str]:
    return {
        "doctor_id": str(appt.doctor_id),
        "date": appt.starts_at.date().isoformat(),
        "time": f"{appt.starts_at:%H:%M}",
        "cabinet_id": str(appt.cabinet_id or ""),
    }


def _render_move(
    appt: Appointment, values: Mapping[str, str], errors: Mapping[str, str], status: int = 200
) -> Any:
    return _render_action("schedule/move.html", appt, values, errors, status)


def _render_action(
    template: str, appt: Appointment, values: Mapping[str, str], errors: Mapping[str, str], status: int
) -> Any:
    """A form about one appointment («Перенести», «Отменить запись») with its values and errors."""
    return render_template(template, a=appt, values=values, errors=errors, **_choices()), status


@bp.get(f"/schedule/appointments/<{ROW_ID}:appointment_id>/move")
def move_form(appointment_id: int):  # type: ignore[no-untyped-def]
    appt = _appointment_or_404(appointment_id)
    return _render_move(appt, _move_values(appt), {})


@bp.post(f"/schedule/appointments/<{ROW_ID}:appointment_id>/move")
def move(appointment_id: int):  # type: ignore[no-untyped-def]
    session = db()
    appt = _appointment_or_404(appointment_id)
    form = {name: request.form.get(name, "") for name in _MOVE_FIELDS}
    errors: dict[str, str] = {}
    if not form["doctor_id"]:
        errors["doctor_id"] = "Выберите врача"
    starts_at = _starts_at(form, errors)
    if errors:
        return _render_move(appt, form, errors, 422)
    was_confirmed = bool(appt.confirmation_status)
    before = (appt.doctor_id, appt.starts_at, appt.cabinet_id)
    data = {"doctor_id": form["doctor_id"], "cabinet_id": form["cabinet_id"], "starts_at": starts_at}
    try:
        update_appointment(session, appt.id, data, forms=True)
        if appt.starts_at != before[1]:  # an imported out-of-hours visit may change doctor in place
            check_in_grid(session, appt)
    except ValidationError as exc:
        session.rollback()
        return _render_move(_appointment_or_404(appointment_id), form, _form_errors(exc), 422)
    if (appt.doctor_id, appt.starts_at, appt.cabinet_id) == before:
        flash("Врач, время и кабинет не изменились: запись осталась как была", "warning")
        return _back_to(appt)
    session.commit()
    message = f"Запись перенесена: {_when(appt)}, врач {appt.doctor.short_name}"
    if was_confirmed and not appt.confirmation_status:
        message += ". Подтверждение пациента сброшено: время изменилось"
    flash(message, "success")
    _warn_cabinet(appt)
    return _back_to(appt)


# --------------------------------------------------------------------------- confirm and cancel


@bp.post(f"/schedule/appointments/<{ROW_ID}:appointment_id>/confirm")
def confirm(appointment_id: int):  # type: ignore[no-untyped-def]
    session = db()
    appt = _appointment_or_404(appointment_id)
    try:
        changed = confirm_appointment(session, appt.id, source=SOURCE_REGISTRAR)
    except ValidationError as exc:
        session.rollback()
        flash("Запись не подтверждена. " + " ".join(exc.errors.values()), "error")
        return _back_to(_appointment_or_404(appointment_id))
    session.commit()
    who = f"{appt.patient.full_name}, {_when(appt)}"
    flash(f"Запись подтверждена: {who}" if changed else f"Запись уже подтверждена: {who}", "success")
    return _back_to(appt)


def _render_cancel(
    appt: Appointment, values: Mapping[str, str], errors: Mapping[str, str], status: int = 200
) -> Any:
    return _render_action("schedule/cancel.html", appt, values, errors, status)


@bp.get(f"/schedule/appointments/<{ROW_ID}:appointment_id>/cancel")
def cancel_form(appointment_id: int):  # type: ignore[no-untyped-def]
    return _render_cancel(_appointment_or_404(appointment_id), {"reason": ""}, {})


@bp.post(f"/schedule/appointments/<{ROW_ID}:appointment_id>/cancel")
def cancel(appointment_id: int):  # type: ignore[no-untyped-def]
    session = db()
    appt = _appointment_or_404(appointment_id)
    values = {"reason": request.form.get("reason", "")}
    if appt.status == "cancelled":
        flash(f"Запись уже отменена ({appt.cancel_reason})", "warning")
        return _back_to(appt)
    try:
        cancel_appointment(session, appt.id, values, forms=True)
    except ValidationError as exc:
        session.rollback()
        return _render_cancel(_appointment_or_404(appointment_id), values, _form_errors(exc), 422)
    except NotFoundError:
        abort(404)
    session.commit()
    who = f"{appt.patient.full_name}, {_when(appt)}"
    flash(f"Запись отменена: {who}. Причина: {appt.cancel_reason}", "success")
    return _back_to(appt)
