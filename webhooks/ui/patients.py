"""Blueprint `patients`: search and the patient card."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from clinic import timeline
from clinic.models import Appointment, Patient
from webhooks.ui.clinic_time import clinic_now
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.formatting import age
from webhooks.ui.patient_search import MIN_QUERY, search_patients

bp = Blueprint("patients", __name__, url_prefix="/patients")

PAST_SHOWN = 50


@bp.get("")
def search():  # type: ignore[no-untyped-def]
    query = request.args.get("q", "").strip()[:100]
    results = search_patients(db(), query) if query else []
    return render_template(
        "patients/search.html", query=query, results=results, too_short=0 < len(query) < MIN_QUERY
    )


@bp.get(f"/<{ROW_ID}:patient_id>")
def card(patient_id: int):  # type: ignore[no-untyped-def]
    session = db()
    patient = session.get(Patient, patient_id)
    if patient is None:
        abort(404)
    now = clinic_now(session)
    base = (
        select(Appointment)
        .options(
            joinedload(Appointment.doctor), joinedload(Appointment.cabinet), joinedload(Appointment.service)
        )
        .where(Appointment.patient_id == patient.id)
    )
    upcoming = (
        session.scalars(base.where(Appointment.starts_at >= now).order_by(Appointment.starts_at))
        .unique()
        .all()
    )
    past = (
        session.scalars(
            base.where(Appointment.starts_at < now).order_by(Appointment.starts_at.desc()).limit(PAST_SHOWN)
        )
        .unique()
        .all()
    )
    kinds = [k for k in request.args.getlist("kind") if k in timeline.KINDS] or list(timeline.KINDS)
    cursor = request.args.get("before", "")[:64]
    history = timeline.patient_timeline(session, patient.id, kinds=kinds, cursor=cursor or None)
    return render_template(
        "patients/card.html",
        patient=patient,
        age=age(patient.birth_date, now.date()),
        upcoming=upcoming,
        past=past,
        history=history,
        history_kinds=timeline.KINDS,
        chosen_kinds=kinds,
        history_older=bool(cursor),
        can_play=current_app.view_functions.get("phone.recording") is not None,
    )
