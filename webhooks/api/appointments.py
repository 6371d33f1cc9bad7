"""/appointments («талоны»): the day's list, booking, changes, cancellation, МИС upsert."""

from __future__ import annotations

from flask import url_for

from clinic.services import schedule
from webhooks.api import bp
from webhooks.api.common import json_body, json_response, query_params, unit_of_work
from webhooks.api.params import ALLOW_PAST, DATE, DOCTOR_ID
from webhooks.api.serialize import dump_appointment


@bp.get("/appointments")
def list_appointments():  # type: ignore[no-untyped-def]
    p = query_params(DATE, DOCTOR_ID)
    with unit_of_work() as s:
        rows = schedule.appointments_for_day(s, p["date"], doctor_id=p["doctor_id"])
        items = [dump_appointment(row) for row in rows]
    return json_response({"items": items, "total": len(items)})


@bp.post("/appointments")
def create_appointment():  # type: ignore[no-untyped-def]
    p = query_params(ALLOW_PAST)
    data = json_body()
    with unit_of_work() as s:
        row = schedule.create_appointment(s, data, allow_past=p["allow_past"])
        body = dump_appointment(row)
    return json_response(body, 201, {"Location": url_for("api_v1.get_appointment", appointment_id=row.id)})


@bp.get("/appointments/<int:appointment_id>")
def get_appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_appointment(schedule.get_appointment(s, appointment_id))
    return json_response(body)


@bp.patch("/appointments/<int:appointment_id>")
def update_appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    p = query_params(ALLOW_PAST)
    data = json_body()
    with unit_of_work() as s:
        row = schedule.update_appointment(s, appointment_id, data, allow_past=p["allow_past"])
        body = dump_appointment(row)
    return json_response(body)


@bp.post("/appointments/<int:appointment_id>/cancel")
def cancel_appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        body = dump_appointment(schedule.cancel_appointment(s, appointment_id, data))
    return json_response(body)


@bp.get("/appointments/by-external/<external_id>")
def get_appointment_by_external(external_id: str):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_appointment(schedule.get_appointment_by_external(s, external_id))
    return json_response(body)


@bp.put("/appointments/by-external/<external_id>")
def upsert_appointment(external_id: str):  # type: ignore[no-untyped-def]
    p = query_params(ALLOW_PAST)
    data = json_body()
    with unit_of_work() as s:
        row, created = schedule.upsert_appointment(s, external_id, data, allow_past=p["allow_past"])
        body = dump_appointment(row)
    return json_response(body, 201 if created else 200)
