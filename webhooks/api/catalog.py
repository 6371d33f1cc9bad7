"""/cabinets and /services: the reference lists a МИС needs before it can book appointments.
Each has a natural key (cabinet number, service code) that the upsert PUT uses."""

from __future__ import annotations

from flask import url_for

from clinic.services import schedule
from webhooks.api import bp
from webhooks.api.common import json_body, json_response, query_params, unit_of_work
from webhooks.api.params import ACTIVE
from webhooks.api.serialize import dump_cabinet, dump_service


@bp.get("/cabinets")
def list_cabinets():  # type: ignore[no-untyped-def]
    p = query_params(ACTIVE)
    with unit_of_work() as s:
        items = [dump_cabinet(row) for row in schedule.list_cabinets(s, active=p["active"])]
    return json_response({"items": items, "total": len(items)})


@bp.post("/cabinets")
def create_cabinet():  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row = schedule.create_cabinet(s, data)
        body = dump_cabinet(row)
    return json_response(body, 201, {"Location": url_for("api_v1.get_cabinet", cabinet_id=row.id)})


@bp.get("/cabinets/<int:cabinet_id>")
def get_cabinet(cabinet_id: int):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_cabinet(schedule.get_cabinet(s, cabinet_id))
    return json_response(body)


@bp.put("/cabinets/by-number/<number>")
def upsert_cabinet(number: str):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row, created = schedule.upsert_cabinet(s, number, data)
        body = dump_cabinet(row)
    return json_response(body, 201 if created else 200)


@bp.get("/services")
def list_services():  # type: ignore[no-untyped-def]
    p = query_params(ACTIVE)
    with unit_of_work() as s:
        items = [dump_service(row) for row in schedule.list_services(s, active=p["active"])]
    return json_response({"items": items, "total": len(items)})


@bp.post("/services")
def create_service():  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row = schedule.create_service(s, data)
        body = dump_service(row)
    return json_response(body, 201, {"Location": url_for("api_v1.get_service", service_id=row.id)})


@bp.get("/services/<int:service_id>")
def get_service(service_id: int):  # type: ignore[no-untyped-def]
    with unit_of_work() as s:
        body = dump_service(schedule.get_service(s, service_id))
    return json_response(body)


@bp.put("/services/by-code/<code>")
def upsert_service(code: str):  # type: ignore[no-untyped-def]
    data = json_body()
    with unit_of_work() as s:
        row, created = schedule.upsert_service(s, code, data)
        body = dump_service(row)
    return json_response(body, 201 if created else 200)
