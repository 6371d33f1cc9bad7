"""/patients: create, read, change, search, paging, phone lookup and the МИС upsert."""

from __future__ import annotations

from typing import Any

import pytest

from clinic.models import Patient

from .conftest import Api

pytestmark = pytest.mark.db


def _new(api: Api, **fields: Any) -> dict[str, Any]:
    r = api.post("/patients", {"last_name": "Петров", "first_name": "Пётр", **fields})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_create_get_and_patch(api: Api) -> None:
    r = api.post(
        "/patients",
        {
            "external_id": "KSAMU-1",
            "last_name": " Иванова ",
            "first_name": "Мария",
            "patronymic": "Петровна",
            "birth_date": "1980-02-29",
            "phone": "8 (916) 123-45-67",
            "phone_extra": "+7 495 123-45-67",
            "consent_sms": False,
            "notes": "Аллергия на пенициллин\nвторая строка",
        },
    )
    assert r.status_code == 201
    created = r.get_json()
    assert r.headers["Location"].endswith(f"/api/v1/patients/{created['id']}")
    assert created["last_name"] == "Иванова"  # trimmed
    assert created["full_name"] == "Иванова Мария Петровна"
    assert created["phone"] == "+79161234567" and created["phone_extra"] == "+74951234567"
    assert created["birth_date"] == "1980-02-29"
    assert created["consent_sms"] is False and created["consent_calls"] is True
    assert created["created_at"].endswith("+00:00")

    assert api.get(f"/patients/{created['id']}").get_json() == created

    r = api.patch(f"/patients/{created['id']}", {"phone": None, "consent_sms": True, "patronymic": None})
    assert r.status_code == 200
    changed = r.get_json()
    assert changed["phone"] is None and changed["consent_sms"] is True and changed["patronymic"] == ""
    assert changed["last_name"] == "Иванова"  # untouched fields stay
    assert api.get(f"/patients/{created['id']}").get_json()["phone"] is None


def test_missing_patient_is_404_json(api: Api) -> None:
    for path in ("/patients/999999", "/patients/99999999999999999999", "/patients/by-external/nobody"):
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.get_json()["error"]
    assert api.patch("/patients/999999", {"notes": "x"}).status_code == 404


def test_search_by_name_is_case_insensitive_for_cyrillic(api: Api) -> None:
    _new(api, last_name="Иванов", first_name="Сергей")
    _new(api, last_name="ИВАНОВА", first_name="Анна")
    _new(api, last_name="Смирнов", first_name="Иван")
    _new(api, last_name="Кузнецов", first_name="Олег", external_id="X-77")

    def names(q: str) -> set[str]:
        r = api.get("/patients", query_string={"q": q})
        assert r.status_code == 200
        return {p["last_name"] for p in r.get_json()["items"]}

    assert names("иванов") == {"Иванов", "ИВАНОВА"}
    assert names("Иван") == {"Иванов", "ИВАНОВА", "Смирнов"}  # first names match too
    assert names("иванов сергей") == {"Иванов"}  # every word must match
    assert names("X-77") == {"Кузнецов"}
    assert names("100%_") == set()  # LIKE wildcards are literal
    assert len(names("")) == 4


def test_paging(api: Api) -> None:
    for i in range(5):
        _new(api, last_name=f"Фамилия{i}")
    r = api.get("/patients", query_string={"limit": 2, "offset": 2})
    body = r.get_json()
    assert body["total"] == 5 and body["limit"] == 2 and body["offset"] == 2
    assert [p["last_name"] for p in body["items"]] == ["Фамилия2", "Фамилия3"]
    assert api.get("/patients", query_string={"offset": 10}).get_json()["items"] == []


def test_lookup_by_phone_matches_last_10_digits(api: Api) -> None:
    a = _new(api, phone="+79161234567")
    b = _new(api, last_name="Другой", phone="+79990000000", phone_extra="8 916 123-45-67")
    _new(api, last_name="Третий", phone="+79161234568")
    for notation in ("89161234567", "+7 (916) 123-45-67", "9161234567", "007-916-123-45-67"):
        r = api.get("/patients", query_string={"phone": notation})
        assert {p["id"] for p in r.get_json()["items"]} == {a["id"], b["id"]}, notation
    r = api.get("/patients", query_string={"phone": "12345"})
    assert r.status_code == 422 and "phone" in r.get_json()["fields"]


def test_upsert_by_external_id_is_idempotent(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    body = {"last_name": "Соколов", "first_name": "Андрей", "birth_date": "1975-05-05", "phone": "9161112233"}
    first = api.put("/patients/by-external/KS-42", body)
    assert first.status_code == 201
    again = api.put("/patients/by-external/KS-42", body)
    assert again.status_code == 200
    assert again.get_json() == {**first.get_json(), "updated_at": again.get_json()["updated_at"]}
    assert count(Patient) == 1

    moved = api.put("/patients/by-external/KS-42", {"phone": "+79162223344"}).get_json()
    assert moved["id"] == first.get_json()["id"]
    assert moved["phone"] == "+79162223344" and moved["last_name"] == "Соколов"  # absent fields kept
    assert api.get("/patients/by-external/KS-42").get_json()["phone"] == "+79162223344"
    assert count(Patient) == 1


def test_upsert_creating_needs_the_required_fields(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    r = api.put("/patients/by-external/KS-43", {"phone": "+79162223344"})
    assert r.status_code == 422
    assert set(r.get_json()["fields"]) == {"last_name", "first_name"}
    assert count(Patient) == 0


def test_upsert_body_key_must_match_the_path(api: Api) -> None:
    r = api.put("/patients/by-external/A", {"external_id": "B", "last_name": "Х", "first_name": "Y"})
    assert r.status_code == 422 and "external_id" in r.get_json()["fields"]


def test_duplicate_external_id_is_409(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    _new(api, external_id="DUP")
    r = api.post("/patients", {"external_id": "DUP", "last_name": "А", "first_name": "Б"})
    assert r.status_code == 409 and "external_id" in r.get_json()["fields"]
    other = _new(api, external_id="OTHER")
    assert api.patch(f"/patients/{other['id']}", {"external_id": "DUP"}).status_code == 409
    assert count(Patient) == 2


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({}, {"last_name", "first_name"}),
        ({"last_name": "", "first_name": "   "}, {"last_name", "first_name"}),
        ({"last_name": None, "first_name": "Б"}, {"last_name"}),
        ({"last_name": 5, "first_name": ["Б"]}, {"last_name", "first_name"}),
        ({"last_name": "А" * 101, "first_name": "Б"}, {"last_name"}),
        ({"last_name": "А\x00", "first_name": "Б"}, {"last_name"}),
        ({"last_name": "А\nБ", "first_name": "Б"}, {"last_name"}),
        ({"last_name": "\ud800", "first_name": "Б"}, {"last_name"}),
        ({"last_name": "А", "first_name": "Б", "birth_date": "2001-02-29"}, {"birth_date"}),
        ({"last_name": "А", "first_name": "Б", "birth_date": "01.02.2001"}, {"birth_date"}),
        ({"last_name": "А", "first_name": "Б", "birth_date": 20010201}, {"birth_date"}),
        ({"last_name": "А", "first_name": "Б", "birth_date": "2999-01-01"}, {"birth_date"}),
        ({"last_name": "А", "first_name": "Б", "birth_date": "1812-01-01"}, {"birth_date"}),
        ({"last_name": "А", "first_name": "Б", "phone": "12"}, {"phone"}),
        ({"last_name": "А", "first_name": "Б", "phone": "позвоните"}, {"phone"}),
        ({"last_name": "А", "first_name": "Б", "phone": 79161234567}, {"phone"}),
        ({"last_name": "А", "first_name": "Б", "phone_extra": "+7" + "9" * 40}, {"phone_extra"}),
        ({"last_name": "А", "first_name": "Б", "consent_sms": "yes"}, {"consent_sms"}),
        ({"last_name": "А", "first_name": "Б", "consent_calls": None}, {"consent_calls"}),
        ({"last_name": "А", "first_name": "Б", "consent_calls": 1}, {"consent_calls"}),
        ({"last_name": "А", "first_name": "Б", "notes": "x" * 4001}, {"notes"}),
        ({"last_name": "А", "first_name": "Б", "external_id": "x" * 65}, {"external_id"}),
        ({"last_name": "А", "first_name": "Б", "id": 5}, {"id"}),
        ({"last_name": "А", "first_name": "Б", "lastname": "опечатка"}, {"lastname"}),
    ],
)
def test_invalid_patient_is_422_and_nothing_is_written(api: Api, count, body, bad) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/patients", body)
    assert r.status_code == 422, r.get_json()
    payload = r.get_json()
    assert set(payload["fields"]) == bad
    assert payload["error"] and all(isinstance(m, str) and m for m in payload["fields"].values())
    assert count(Patient) == 0


def test_invalid_change_leaves_the_patient_as_it_was(api: Api) -> None:
    p = _new(api, phone="+79161234567")
    r = api.patch(f"/patients/{p['id']}", {"last_name": "Новая", "phone": "не номер"})
    assert r.status_code == 422 and set(r.get_json()["fields"]) == {"phone"}
    assert api.get(f"/patients/{p['id']}").get_json() == p


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "abc"},
        {"offset": "-1"},
        {"offset": "1e3"},
        {"q": "x" * 101},
        {"q": "a\x00b"},
        {"page": "2"},
    ],
)
def test_bad_list_parameters_are_422(api: Api, query: dict[str, str]) -> None:
    r = api.get("/patients", query_string=query)
    assert r.status_code == 422
    assert set(r.get_json()["fields"]) == set(query)


def test_repeated_parameter_is_422(api: Api) -> None:
    r = api.get("/patients?limit=1&limit=2")
    assert r.status_code == 422 and "limit" in r.get_json()["fields"]
