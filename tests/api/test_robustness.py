"""Garbage in never gets a 500 out: malformed JSON, wrong content types, wrong shapes, unknown
paths and methods all answer JSON 4xx, and a failed request writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clinic.models import Appointment, Cabinet, Employee, Patient, Service

from .conftest import PREFIX, Api, at

pytestmark = pytest.mark.db

WRITES = [
    ("POST", "/patients"),
    ("PATCH", "/patients/{patient}"),
    ("PUT", "/patients/by-external/X"),
    ("POST", "/employees"),
    ("PATCH", "/employees/{doctor}"),
    ("PUT", "/employees/by-external/X"),
    ("POST", "/cabinets"),
    ("PUT", "/cabinets/by-number/1"),
    ("POST", "/services"),
    ("PUT", "/services/by-code/X"),
    ("POST", "/appointments"),
    ("PATCH", "/appointments/{appointment}"),
    ("PUT", "/appointments/by-external/X"),
    ("POST", "/appointments/{appointment}/cancel"),
]
MODELS = (Patient, Employee, Cabinet, Service, Appointment)


@pytest.fixture()
def ids(api: Api, patient: dict, doctor: dict) -> dict[str, int]:
    appt = api.post(
        "/appointments", {"patient_id": patient["id"], "doctor_id": doctor["id"], "starts_at": at(7, 10)}
    ).get_json()
    return {"patient": patient["id"], "doctor": doctor["id"], "appointment": appt["id"]}


def _snapshot(api: Api, count: Any) -> tuple[Any, ...]:
    return (
        tuple(count(m) for m in MODELS),
        api.get("/appointments", query_string={"date": at(7, 0)[:10]}).get_json(),
        api.get("/patients").get_json(),
        api.get("/employees").get_json(),
    )


def _raw(api: Api, method: str, path: str, data: bytes | str, content_type: str | None) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return api.request(method, path, data=data, headers=headers)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_garbage_bodies(api: Api, ids: dict[str, int], count: Any, method: str, path: str) -> None:
    path = path.format(**ids)
    before = _snapshot(api, count)
    cases: list[tuple[bytes | str, str | None, set[int]]] = [
        (b"{not json", "application/json", {400}),
        (b"", "application/json", {400}),
        (b"\xff\xfe\x00garbage", "application/json", {400}),
        (b'{"a": NaN}', "application/json", {400}),
        (b'{"a": Infinity}', "application/json", {400}),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", {400, 422}),
        (b"[]", "application/json", {422}),
        (b'"text"', "application/json", {422}),
        (b"null", "application/json", {422}),
        (b"42", "application/json", {422}),
        (b'{"last_name": "x"}', "text/plain", {415}),
        (b"last_name=x", "application/x-www-form-urlencoded", {415}),
        (b'{"last_name": "x"}', None, {415}),
        (json.dumps({"\ud800": 1, "x" * 500: [1, {"deep": None}]}), "application/json", {422}),
        (
            json.dumps(
                {
                    "starts_at": {"$gt": ""},
                    "patient_id": [],
                    "last_name": {},
                    "reason": 5,
                    "number": ["1"],
                    "code": None,
                    "name": 1.5,
                }
            ),
            "application/json",
            {422},
        ),
        (b"{}" + b" " * (1024 * 1024), "application/json", {413}),
    ]
    for data, content_type, expected in cases:
        r = _raw(api, method, path, data, content_type)
        assert r.status_code in expected, (data[:40], content_type, r.status_code, r.get_json())
        body = r.get_json()
        assert isinstance(body["error"], str) and body["error"] and isinstance(body["fields"], dict)
    assert _snapshot(api, count) == before


def test_bom_prefixed_json_is_accepted(api: Api) -> None:
    data = "\ufeff" + json.dumps({"last_name": "Иванов", "first_name": "Иван"})
    r = _raw(api, "POST", "/patients", data.encode("utf-8"), "application/json; charset=utf-8")
    assert r.status_code == 201


def test_unknown_path_and_wrong_method_answer_json(api: Api) -> None:
    for path in (
        "/",
        "/nothing",
        "/patients/abc",
        "/patients/1/extra",
        "/patients/",
        "/appointments/1/confirm",
    ):
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.get_json()["error"]
    r = api.request("DELETE", "/patients/1")
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "PATCH"}
    assert api.request("PUT", "/patients", json={}).status_code == 405
    assert api.request("GET", "/appointments/1/cancel").status_code == 405


def test_paths_outside_the_api_are_left_to_the_rest_of_the_app(app: Any) -> None:
    r = app.test_client().get("/definitely-not-a-page")
    assert r.status_code in (302, 404)  # the UI's login redirect or its own error page
    assert r.mimetype != "application/json"
    assert app.test_client().get(PREFIX + "/definitely-not-a-page").mimetype == "application/json"


def test_a_failed_appointment_write_leaves_nothing_behind(api: Api, ids: dict[str, int], count: Any) -> None:
    """Upsert resolves references and creates in one transaction: a busy doctor undoes it all."""
    before = _snapshot(api, count)
    r = api.put(
        "/appointments/by-external/NEW",
        {"patient_external_id": "P1", "doctor_external_id": "D1", "starts_at": at(7, 10, 5)},
    )
    assert r.status_code == 409
    assert api.get("/appointments/by-external/NEW").status_code == 404
    assert _snapshot(api, count) == before


def test_huge_ids_in_the_path_are_404_not_500(api: Api) -> None:
    for path in (
        "/patients/2147483648",
        "/employees/99999999999999999999999",
        "/appointments/0",
        "/cabinets/2147483647",
        "/services/12345678901234567890",
    ):
        assert api.get(path).status_code == 404, path
    assert api.post("/appointments/99999999999999/cancel", {"reason": "x"}).status_code == 404


def test_odd_external_ids_in_the_path(api: Api, count: Any) -> None:
    assert api.get("/patients/by-external/a%00b").status_code == 422
    assert api.get("/patients/by-external/" + "x" * 65).status_code == 422
    r = api.put("/patients/by-external/%20", {"last_name": "А", "first_name": "Б"})
    assert r.status_code == 422
    r = api.put("/patients/by-external/%D0%9A%D0%A1-1", {"last_name": "А", "first_name": "Б"})
    assert r.status_code == 201 and r.get_json()["external_id"] == "КС-1"
    assert count(Patient) == 1


def test_deeply_nested_json_is_400(api: Api) -> None:
    response = api.request("POST", "/patients", data="[" * 50_000, content_type="application/json")
    assert response.status_code == 400
    assert "вложенность" in response.get_json()["error"]
