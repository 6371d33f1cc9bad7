"""The OpenAPI document: every route is described and every description is a route; every
$ref resolves; and real answers match the schemas the document promises for them."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from flask import Flask

from webhooks.api.errors import FALLBACK_ENDPOINT
from webhooks.api.openapi import OPERATIONS, build_document

from .conftest import PREFIX, Api, at

pytestmark = pytest.mark.db

AUTOMATIC = {"HEAD", "OPTIONS"}  # added by Flask to every rule


def _routes(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api_v1.") or rule.endpoint == FALLBACK_ENDPOINT:
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        found |= {(path, m.lower()) for m in rule.methods - AUTOMATIC}
    return found


def test_every_route_is_documented_and_vice_versa(app: Flask) -> None:
    doc = build_document()
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert _routes(app) == documented
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_document_is_self_consistent() -> None:
    doc = build_document()
    assert doc["openapi"] == "3.1.0"
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    for path, item in doc["paths"].items():
        declared = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == declared, (path, method)
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes)
            if op["operationId"] != "getOpenApi":
                assert "401" in codes, (path, method)
            if "requestBody" in op:
                assert {"400", "415", "422"} <= codes, (path, method)


# A small JSON Schema check, enough for the subset the document uses.
def _check(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    if "$ref" in schema:
        return _check(doc, _resolve(doc, schema["$ref"]), value, where)
    if "enum" in schema:
        assert value in schema["enum"], where
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        python = {
            "string": str,
            "integer": int,
            "boolean": bool,
            "object": dict,
            "array": list,
            "null": type(None),
            "number": (int, float),
        }
        assert any(
            isinstance(value, python[t]) and not (t == "integer" and isinstance(value, bool)) for t in names
        ), f"{where}: {value!r} is not {names}"
    if isinstance(value, str):
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"
        if "maxLength" in schema:
            assert len(value) <= schema["maxLength"], where
        if schema.get("format") == "date":
            date.fromisoformat(value)
    if isinstance(value, int) and not isinstance(value, bool):
        assert schema.get("minimum", value) <= value <= schema.get("maximum", value), where
    if isinstance(value, dict):
        props = schema.get("properties", {})
        assert set(schema.get("required", [])) <= set(value), f"{where}: missing {schema.get('required')}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(props), f"{where}: undocumented {set(value) - set(props)}"
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else {})
            _check(doc, sub, item, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(doc, schema["items"], item, f"{where}[{i}]")
    return None


def test_real_answers_match_the_documented_schemas(api: Api, patient: dict, doctor: dict) -> None:
    doc = build_document()
    seen: set[tuple[str, str, str]] = set()

    def call(method: str, template: str, path: str, body: Any = None, **kw: Any) -> Any:
        if isinstance(body, bytes):
            kw["data"], body = body, None
        r = api.request(method.upper(), path, body, **kw)
        responses = doc["paths"][template][method]["responses"]
        assert str(r.status_code) in responses, (method, path, r.status_code)
        schema = responses[str(r.status_code)]
        schema = _resolve(doc, schema["$ref"]) if "$ref" in schema else schema
        _check(doc, schema["content"]["application/json"]["schema"], r.get_json(), f"{method} {path}")
        seen.add((template, method, str(r.status_code)))
        return r.get_json()

    cab = call("post", "/cabinets", "/cabinets", {"number": "5", "name": "Процедурный"})
    svc = call("post", "/services", "/services", {"code": "C1", "name": "ЭКГ", "price": 800})
    appt = call(
        "post",
        "/appointments",
        "/appointments",
        {
            "patient_id": patient["id"],
            "doctor_id": doctor["id"],
            "cabinet_id": cab["id"],
            "service_id": svc["id"],
            "starts_at": at(7, 10),
            "external_id": "A-1",
        },
    )
    call(
        "post",
        "/appointments",
        "/appointments",
        {"patient_id": patient["id"], "doctor_id": doctor["id"], "starts_at": at(7, 10)},
    )  # 409
    call("post", "/appointments", "/appointments", {"starts_at": "x"})  # 422
    call("get", "/appointments", "/appointments", query_string={"date": at(7, 0)[:10]})
    call("get", "/appointments/{appointment_id}", f"/appointments/{appt['id']}")
    call("get", "/appointments/{appointment_id}", "/appointments/999999")  # 404
    call("patch", "/appointments/{appointment_id}", f"/appointments/{appt['id']}", {"extra_info": "x"})
    call("get", "/appointments/by-external/{external_id}", "/appointments/by-external/A-1")
    call(
        "put",
        "/appointments/by-external/{external_id}",
        "/appointments/by-external/A-1",
        {"duration_min": 25},
    )
    call(
        "post",
        "/appointments/{appointment_id}/cancel",
        f"/appointments/{appt['id']}/cancel",
        {"reason": "Отмена"},
    )
    call("patch", "/appointments/{appointment_id}", f"/appointments/{appt['id']}", {"extra_info": "y"})  # 409
    call("get", "/patients", "/patients", query_string={"q": "иван"})
    call("get", "/patients/{patient_id}", f"/patients/{patient['id']}")
    call("patch", "/patients/{patient_id}", f"/patients/{patient['id']}", {"birth_date": "1990-01-01"})
    call(
        "put",
        "/patients/by-external/{external_id}",
        "/patients/by-external/P2",
        {"last_name": "Н", "first_name": "М"},
    )
    call("get", "/patients/by-external/{external_id}", "/patients/by-external/P2")
    call("get", "/employees", "/employees")
    call("get", "/employees/{employee_id}", f"/employees/{doctor['id']}")
    call("put", "/employees/by-external/{external_id}", "/employees/by-external/D1", {"phone": "9161112233"})
    call("get", "/cabinets", "/cabinets")
    call("get", "/services", "/services")
    call("put", "/services/by-code/{code}", "/services/by-code/C1", {"price": "900.50"})
    call("put", "/cabinets/by-number/{number}", "/cabinets/by-number/6", {})
    call("get", "/openapi.json", "/openapi.json")
    call("post", "/patients", "/patients", b"{", headers={"Content-Type": "application/json"})  # 400
    call("post", "/patients", "/patients", b"{}", headers={"Content-Type": "text/plain"})  # 415
    call("get", "/patients", "/patients", token="wrong")  # 401
    assert {code for *_, code in seen} >= {"200", "201", "400", "401", "404", "409", "415", "422"}


def test_document_passes_an_openapi_validator() -> None:
    from openapi_spec_validator import validate

    validate(build_document())
