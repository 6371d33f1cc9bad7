"""/cabinets and /services: list, create, read, upsert by the natural key."""

from __future__ import annotations

import pytest

from clinic.models import Cabinet, Service

from .conftest import Api

pytestmark = pytest.mark.db


def test_cabinets(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/cabinets", {"number": "101", "name": "Терапевтический"})
    assert r.status_code == 201
    cab = r.get_json()
    assert cab["is_active"] is True and r.headers["Location"].endswith(f"/cabinets/{cab['id']}")
    assert api.get(f"/cabinets/{cab['id']}").get_json() == cab

    dup = api.post("/cabinets", {"number": "101"})
    assert dup.status_code == 409 and "number" in dup.get_json()["fields"]

    assert api.put("/cabinets/by-number/102", {"name": "ЛОР"}).status_code == 201
    again = api.put("/cabinets/by-number/102", {"name": "ЛОР"})
    assert again.status_code == 200 and again.get_json()["name"] == "ЛОР"
    assert api.put("/cabinets/by-number/101", {"is_active": False}).get_json()["id"] == cab["id"]
    assert count(Cabinet) == 2

    everything = api.get("/cabinets").get_json()
    assert [c["number"] for c in everything["items"]] == ["101", "102"] and everything["total"] == 2
    assert [c["number"] for c in api.get("/cabinets?active=true").get_json()["items"]] == ["102"]
    assert api.get("/cabinets/424242").status_code == 404


def test_services(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    r = api.post(
        "/services",
        {"code": "B01.047.001", "name": "Приём терапевта первичный", "duration_min": 30, "price": 1500},
    )
    assert r.status_code == 201
    svc = r.get_json()
    assert svc["price"] == "1500.00" and svc["duration_min"] == 30
    assert api.get(f"/services/{svc['id']}").get_json() == svc

    defaults = api.post("/services", {"code": "A11", "name": "Взятие крови", "price": "300.5"}).get_json()
    assert defaults["duration_min"] == 20 and defaults["price"] == "300.50"

    up = api.put("/services/by-code/B01.047.001", {"price": 1700.25})
    assert (
        up.status_code == 200 and up.get_json()["price"] == "1700.25" and up.get_json()["duration_min"] == 30
    )
    assert api.put("/services/by-code/NEW", {"name": "Новая"}).status_code == 201
    assert [s["code"] for s in api.get("/services").get_json()["items"]] == ["A11", "B01.047.001", "NEW"]
    assert count(Service) == 3


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"name": "Без кода"}, {"code"}),
        ({"code": "X", "name": "Y", "price": -1}, {"price"}),
        ({"code": "X", "name": "Y", "price": 10.005}, {"price"}),
        ({"code": "X", "name": "Y", "price": "12,5,0"}, {"price"}),
        ({"code": "X", "name": "Y", "price": 1e12}, {"price"}),
        ({"code": "X", "name": "Y", "price": True}, {"price"}),
        ({"code": "X", "name": "Y", "duration_min": 0}, {"duration_min"}),
        ({"code": "X", "name": "Y", "duration_min": 721}, {"duration_min"}),
        ({"code": "X", "name": "Y", "duration_min": 20.5}, {"duration_min"}),
        ({"code": "X", "name": "Y", "duration_min": "20"}, {"duration_min"}),
        ({"code": "X" * 33, "name": "Y"}, {"code"}),
    ],
)
def test_invalid_service_is_422(api: Api, count, body, bad) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/services", body)
    assert r.status_code == 422 and set(r.get_json()["fields"]) == bad
    assert count(Service) == 0


def test_upsert_key_in_body_must_match_path(api: Api) -> None:
    r = api.put("/cabinets/by-number/101", {"number": "102"})
    assert r.status_code == 422 and "number" in r.get_json()["fields"]
    r = api.put("/services/by-code/A", {"code": "B", "name": "Y"})
    assert r.status_code == 422 and "code" in r.get_json()["fields"]
