"""/patients: search, read, create, change, and the МИС's idempotent upsert by its own code."""

from __future__ import annotations

from flask import url_for

from clinic.services import schedule
from webhooks.api import bp
from webhooks.api.common import json_body, json_response, query_params, unit_of_work
from webhooks.api.params import LIMIT, OFFSET, PHONE, Q
from webhooks.api.serialize import dump_patient


@bp.get("/patients")
def list_patients():  # type: ignore[no-untyped-def]
    p = query_params(Q, PHONE, LIMIT, OFFSET)
    with unit_of_work() as s:
        page = schedule.search_patients(s, q=p["q"], phone=p["phone"], limit=p["limit"], offset=p["offset"])
        items = [dump_patient(row) for row in page.items]
    return json_response({"items": items, "total": page.total, "limit": page.limit, "offset": page.offset})


@bp.post("/patients")
def create_patient():  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row = schedule.create_patient(s, data)
        body = dump_patient(row)
    return json_response(body, 201, {"Location": url_for("api_v1.get_patient", patient_id=row.id)})


@bp.get("/patients/<int:patient_id>")
def get_patient(patient_id: int):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_patient(schedule.get_patient(s, patient_id))
    return json_response(body)


@bp.patch("/patients/<int:patient_id>")
def update_patient(patient_id: int):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        body = dump_patient(schedule.update_patient(s, patient_id, data))
    return json_response(body)


@bp.get("/patients/by-external/<external_id>")
def get_patient_by_external(external_id: str):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_patient(schedule.get_patient_by_external(s, external_id))
    return json_response(body)


@bp.put("/patients/by-external/<external_id>")
def upsert_patient(external_id: str):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row, created = schedule.upsert_patient(s, external_id, data)
        body = dump_patient(row)
    return json_response(body, 201 if created else 200)
