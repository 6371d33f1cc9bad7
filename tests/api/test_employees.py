"""/employees: doctors and the chief doctor."""

from __future__ import annotations

from typing import Any

import pytest

from clinic.models import Employee

from .conftest import Api

pytestmark = pytest.mark.db


def test_create_get_patch_and_list(api: Api, doctor: dict[str, Any]) -> None:
    assert doctor["role"] == "doctor" and doctor["is_active"] is True and doctor["phone"] is None
    assert doctor["full_name"] == "Орлова Наталья Викторовна"
    r = api.post(
        "/employees",
        {
            "last_name": "Воронцова",
            "first_name": "Елена",
            "role": "chief_doctor",
            "phone": "+7 916 111-00-00",
            "specialty": "Главный врач",
        },
    )
    assert r.status_code == 201
    chief = r.get_json()
    assert r.headers["Location"].endswith(f"/employees/{chief['id']}")
    assert chief["phone"] == "+79161110000"
    assert api.get(f"/employees/{chief['id']}").get_json() == chief
    assert api.get("/employees/by-external/D1").get_json()["id"] == doctor["id"]

    r = api.patch(f"/employees/{doctor['id']}", {"is_active": False, "specialty": "Кардиолог"})
    assert r.status_code == 200 and r.get_json()["is_active"] is False

    listing = api.get("/employees").get_json()
    assert listing["total"] == 2 and [e["last_name"] for e in listing["items"]] == ["Воронцова", "Орлова"]
    assert [e["id"] for e in api.get("/employees?role=chief_doctor").get_json()["items"]] == [chief["id"]]
    assert [e["id"] for e in api.get("/employees?active=false").get_json()["items"]] == [doctor["id"]]
    assert [e["id"] for e in api.get("/employees?active=true").get_json()["items"]] == [chief["id"]]
    assert [e["id"] for e in api.get("/employees?q=кардиолог").get_json()["items"]] == [doctor["id"]]


def test_upsert_is_idempotent(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    body = {"last_name": "Захаров", "first_name": "Игорь", "specialty": "Хирург"}
    first = api.put("/employees/by-external/DOC-7", body)
    second = api.put("/employees/by-external/DOC-7", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json()["id"] == first.get_json()["id"]
    assert first.get_json()["external_id"] == "DOC-7"
    assert count(Employee) == 1


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"first_name": "И"}, {"last_name"}),
        ({"last_name": "З", "first_name": "И", "role": "nurse"}, {"role"}),
        ({"last_name": "З", "first_name": "И", "role": None}, {"role"}),
        ({"last_name": "З", "first_name": "И", "is_active": "false"}, {"is_active"}),
        ({"last_name": "З", "first_name": "И", "phone": "123"}, {"phone"}),
        ({"last_name": "З", "first_name": "И", "specialty": "х" * 201}, {"specialty"}),
        ({"last_name": "З", "first_name": "И", "user_id": 1}, {"user_id"}),
    ],
)
def test_invalid_employee_is_422(api: Api, count, body, bad) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/employees", body)
    assert r.status_code == 422 and set(r.get_json()["fields"]) == bad
    assert count(Employee) == 0


def test_bad_filters_are_422(api: Api) -> None:
    assert set(api.get("/employees?role=boss").get_json()["fields"]) == {"role"}
    assert set(api.get("/employees?active=maybe").get_json()["fields"]) == {"active"}
