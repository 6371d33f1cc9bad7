"""The OpenAPI 3.1 document of /api/v1, served without auth.

OPERATIONS is the one list of what the API offers; tests/api/test_openapi.py checks it
against the routes actually registered on the blueprint, both ways. The schemas come from
schemas.py, i.e. from the same field definitions that validate requests and shape responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from clinic.services.schedule import MAX_DURATION_MIN, Field
from webhooks.api import bp
from webhooks.api.common import Param, json_response
from webhooks.api.params import ACTIVE, ALLOW_PAST, DATE, DOCTOR_ID, LIMIT, OFFSET, PHONE, ROLE, Q
from webhooks.api.schemas import ERRORS, component_schemas, field_schema
from webhooks.api.sms import SCHEMAS as SMS_SCHEMAS


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    ok: int = 200
    response: str | None = None  # a component schema name
    body: str | None = None
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""


_W = (400, 413, 415, 422)  # what any request with a JSON body can fail with
_UPSERT = (
    "Idempotent sync from the МИС: creates the record with this key (201) or updates the fields "
    "given (200); fields absent from the body keep their stored values, so repeating a request "
    "changes nothing. On creation the fields required by the Create schema must be present."
)

OPERATIONS: tuple[Op, ...] = (
    Op("get", "/openapi.json", "getOpenApi", "Этот документ OpenAPI 3.1", "meta"),
    Op(
        "get",
        "/patients",
        "listPatients",
        "Пациенты: поиск и страница списка",
        "patients",
        response="PatientList",
        query=(Q, PHONE, LIMIT, OFFSET),
        errors=(422,),
    ),
    Op(
        "post",
        "/patients",
        "createPatient",
        "Новый пациент",
        "patients",
        201,
        "Patient",
        "PatientCreate",
        errors=(*_W, 409),
    ),
    Op(
        "get",
        "/patients/{patient_id}",
        "getPatient",
        "Пациент по id",
        "patients",
        response="Patient",
        errors=(404,),
    ),
    Op(
        "patch",
        "/patients/{patient_id}",
        "updatePatient",
        "Изменить поля пациента",
        "patients",
        response="Patient",
        body="PatientChanges",
        errors=(*_W, 404, 409),
    ),
    Op(
        "get",
        "/patients/by-external/{external_id}",
        "getPatientByExternal",
        "Пациент по коду МИС",
        "patients",
        response="Patient",
        errors=(404, 422),
    ),
    Op(
        "put",
        "/patients/by-external/{external_id}",
        "upsertPatient",
        "Синхронизация пациента из МИС",
        "patients",
        response="Patient",
        body="PatientChanges",
        errors=(*_W, 409),
        description=_UPSERT,
    ),
    Op(
        "get",
        "/employees",
        "listEmployees",
        "Сотрудники",
        "employees",
        response="EmployeeList",
        query=(Q, ROLE, ACTIVE, LIMIT, OFFSET),
        errors=(422,),
    ),
    Op(
        "post",
        "/employees",
        "createEmployee",
        "Новый сотрудник",
        "employees",
        201,
        "Employee",
        "EmployeeCreate",
        errors=(*_W, 409),
    ),
    Op(
        "get",
        "/employees/{employee_id}",
        "getEmployee",
        "Сотрудник по id",
        "employees",
        response="Employee",
        errors=(404,),
    ),
    Op(
        "patch",
        "/employees/{employee_id}",
        "updateEmployee",
        "Изменить поля сотрудника",
        "employees",
        response="Employee",
        body="EmployeeChanges",
        errors=(*_W, 404, 409),
    ),
    Op(
        "get",
        "/employees/by-external/{external_id}",
        "getEmployeeByExternal",
        "Сотрудник по коду МИС",
        "employees",
        response="Employee",
        errors=(404, 422),
    ),
    Op(
        "put",
        "/employees/by-external/{external_id}",
        "upsertEmployee",
        "Синхронизация сотрудника из МИС",
        "employees",
        response="Employee",
        body="EmployeeChanges",
        errors=(*_W, 409),
        description=_UPSERT,
    ),
    Op(
        "get",
        "/cabinets",
        "listCabinets",
        "Кабинеты",
        "catalog",
        response="CabinetList",
        query=(ACTIVE,),
        errors=(422,),
    ),
    Op(
        "post",
        "/cabinets",
        "createCabinet",
        "Новый кабинет",
        "catalog",
        201,
        "Cabinet",
        "CabinetCreate",
        errors=(*_W, 409),
    ),
    Op(
        "get",
        "/cabinets/{cabinet_id}",
        "getCabinet",
        "Кабинет по id",
        "catalog",
        response="Cabinet",
        errors=(404,),
    ),
    Op(
        "put",
        "/cabinets/by-number/{number}",
        "upsertCabinet",
        "Синхронизация кабинета по номеру",
        "catalog",
        response="Cabinet",
        body="CabinetChanges",
        errors=_W,
        description=_UPSERT,
    ),
    Op(
        "get",
        "/services",
        "listServices",
        "Услуги",
        "catalog",
        response="ServiceList",
        query=(ACTIVE,),
        errors=(422,),
    ),
    Op(
        "post",
        "/services",
        "createService",
        "Новая услуга",
        "catalog",
        201,
        "Service",
        "ServiceCreate",
        errors=(*_W, 409),
    ),
    Op(
        "get",
        "/services/{service_id}",
        "getService",
        "Услуга по id",
        "catalog",
        response="Service",
        errors=(404,),
    ),
    Op(
        "put",
        "/services/by-code/{code}",
        "upsertService",
        "Синхронизация услуги по коду",
        "catalog",
        response="Service",
        body="ServiceChanges",
        errors=_W,
        description=_UPSERT,
    ),
    Op(
        "get",
        "/appointments",
        "listAppointments",
        "Записи на приём за день",
        "appointments",
        response="AppointmentList",
        query=(DATE, DOCTOR_ID),
        errors=(422,),
        description="Every appointment starting on that clinic-local day, cancelled ones included.",
    ),
    Op(
        "post",
        "/appointments",
        "createAppointment",
        "Записать на приём",
        "appointments",
        201,
        "Appointment",
        "AppointmentCreate",
        query=(ALLOW_PAST,),
        errors=(*_W, 409),
        description="A booked appointment that would already be over is refused unless allow_past=true; "
        "the doctor must have no other live appointment (not cancelled, not no_show) "
        "overlapping it (409).",
    ),
    Op(
        "get",
        "/appointments/{appointment_id}",
        "getAppointment",
        "Запись по id",
        "appointments",
        response="Appointment",
        errors=(404,),
    ),
    Op(
        "patch",
        "/appointments/{appointment_id}",
        "updateAppointment",
        "Изменить запись",
        "appointments",
        response="Appointment",
        body="AppointmentChanges",
        query=(ALLOW_PAST,),
        errors=(*_W, 404, 409),
        description="A cancelled appointment cannot change (409) unless the body repeats stored values. "
        "Moving it clears the robot's confirmation.",
    ),
    Op(
        "post",
        "/appointments/{appointment_id}/cancel",
        "cancelAppointment",
        "Отменить запись",
        "appointments",
        response="Appointment",
        body="CancelRequest",
        errors=(*_W, 404, 409),
        description="Idempotent: cancelling a cancelled appointment returns it unchanged. A visit "
        "already done cannot be cancelled (409).",
    ),
    Op(
        "get",
        "/appointments/by-external/{external_id}",
        "getAppointmentByExternal",
        "Запись по коду МИС",
        "appointments",
        response="Appointment",
        errors=(404, 422),
    ),
    Op(
        "put",
        "/appointments/by-external/{external_id}",
        "upsertAppointment",
        "Синхронизация записи из МИС",
        "appointments",
        response="Appointment",
        body="AppointmentChanges",
        query=(ALLOW_PAST,),
        errors=(*_W, 409),
        description=_UPSERT,
    ),
    Op(
        "post",
        "/sms",
        "sendSms",
        "Отправить СМС",
        "sms",
        201,
        "SmsMessage",
        "SmsRequest",
        errors=(*_W, 404),
        description="Writes the message to the ledger, then sends it through sms.ru (quiet hours defer "
        "it: state queued, the worker sends it later). 201 for a new message; 200 with the first "
        "message when the idempotency key (or the appointment reminder) was already used. Gateway "
        "failures are not HTTP errors: see state, note and gateway_code.",
    ),
    Op(
        "get",
        "/sms/{message_id}",
        "getSms",
        "СМС и статус доставки",
        "sms",
        response="SmsMessage",
        errors=(404,),
    ),
)

_PATH_PARAMS = {
    "patient_id": "id",
    "employee_id": "id",
    "cabinet_id": "id",
    "service_id": "id",
    "appointment_id": "id",
    "message_id": "id",
    "external_id": Field("external_id", "str", "Код в МИС", required=True, max_len=64),
    "number": Field("number", "str", "Номер кабинета", required=True, max_len=16),
    "code": Field("code", "str", "Код услуги", required=True, max_len=32),
}


def _parameters(op: Op) -> list[dict[str, Any]]:
    params = []
    for name in re.findall(r"{(\w+)}", op.path):
        spec = _PATH_PARAMS[name]
        field = Field(name, "id", "Идентификатор") if spec == "id" else spec
        assert isinstance(field, Field)
        schema = field_schema(field, output=False)
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    for param in op.query:
        schema = field_schema(param.field, output=False)
        if param.default is not None:
            schema["default"] = param.default
        params.append({"name": param.name, "in": "query", "required": param.field.required, "schema": schema})
    return params


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if params := _parameters(op):
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}},
        }
    ok: dict[str, Any] = {"description": "OK" if op.ok == 200 else "Created"}
    if op.response:
        ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.response}"}}}
    elif op.operation_id == "getOpenApi":
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    responses: dict[str, Any] = {str(op.ok): ok}
    if op.method == "put":
        responses["201"] = {"description": "Created", "content": ok["content"]}
    if op.operation_id == "getOpenApi":
        out["security"] = []
    else:
        for code in sorted({*op.errors, 401}):
            responses[str(code)] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    out["responses"] = responses
    return out


@cache
def build_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mis-telephony: REST API для МИС",
            "version": "1.0.0",
            "description": (
                "Sync of patients, employees, cabinets, services and appointments from a clinic's "
                "medical information system. JSON in and out (UTF-8); dates YYYY-MM-DD; appointment "
                "times are the clinic's local wall-clock time without an offset; record timestamps are "
                "UTC; phones are returned in E.164. Every request runs in one transaction: an error "
                'writes nothing. Errors are {"error": "...", "fields": {...}} in Russian. '
                f"Appointments last at most {MAX_DURATION_MIN} minutes.\n\n"
                "Syncing from the МИС: PUT /cabinets/by-number/{number}, PUT /services/by-code/{code}, "
                "PUT /employees/by-external/{id}, PUT /patients/by-external/{id}, then "
                "PUT /appointments/by-external/{id} referring to the others by their МИС codes "
                "(patient_external_id, doctor_external_id, cabinet_number, service_code). Every PUT "
                "is an idempotent upsert, so a whole day can be re-sent after a failure."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in ("patients", "employees", "catalog", "appointments", "sms", "meta")],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "From `mis-telephony token create NAME`; only its SHA-256 is stored.",
                }
            },
            "schemas": {**component_schemas(), **SMS_SCHEMAS},
            "responses": {
                name: {"description": text, "content": error_ref} for name, text in ERRORS.values()
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():  # type: ignore[no-untyped-def]
    return json_response(build_document())
