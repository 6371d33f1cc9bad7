"""/employees: doctors and the chief doctor, with the МИС's upsert by its own code."""

from __future__ import annotations

from flask import url_for

from clinic.services import schedule
from webhooks.api import bp
from webhooks.api.common import json_body, json_response, query_params, unit_of_work
from webhooks.api.params import ACTIVE, LIMIT, OFFSET, ROLE, Q
from webhooks.api.serialize import dump_employee


@bp.get("/employees")
def list_employees():  # type: ignore[no-untyped-def]
    p = query_params(Q, ROLE, ACTIVE, LIMIT, OFFSET)
    with unit_of_work() as s:
        page = schedule.list_employees(
            s, q=p["q"], role=p["role"], active=p["active"], limit=p["limit"], offset=p["offset"]
        )
        items = [dump_employee(row) for row in page.items]
    return json_response({"items": items, "total": page.total, "limit": page.limit, "offset": page.offset})


@bp.post("/employees")
def create_employee():  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row = schedule.create_employee(s, data)
        body = dump_employee(row)
    return json_response(body, 201, {"Location": url_for("api_v1.get_employee", employee_id=row.id)})


@bp.get("/employees/<int:employee_id>")
def get_employee(employee_id: int):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_employee(schedule.get_employee(s, employee_id))
    return json_response(body)


@bp.patch("/employees/<int:employee_id>")
def update_employee(employee_id: int):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        body = dump_employee(schedule.update_employee(s, employee_id, data))
    return json_response(body)


@bp.get("/employees/by-external/<external_id>")
def get_employee_by_external(external_id: str):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_employee(schedule.get_employee_by_external(s, external_id))
    return json_response(body)


@bp.put("/employees/by-external/<external_id>")
def upsert_employee(external_id: str):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row, created = schedule.upsert_employee(s, external_id, data)
        body = dump_employee(row)
    return json_response(body, 201 if created else 200)
