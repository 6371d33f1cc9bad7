"""/appointments: booking, the day's list, changes, cancellation, double booking, МИС upsert."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, ClinicSettings
from clinic.services.schedule import clinic_now

from .conftest import Api, at, day

pytestmark = pytest.mark.db

Book = Callable[..., Any]


def test_book_get_and_defaults(api: Api, book: Book, patient: dict, doctor: dict) -> None:
    svc = api.post("/services", {"code": "B1", "name": "Приём", "duration_min": 30}).get_json()
    cab = api.post("/cabinets", {"number": "101"}).get_json()
    r = book(at(7, 9, 30), service_id=svc["id"], cabinet_id=cab["id"], extra_info="Первичный приём")
    assert r.status_code == 201, r.get_json()
    appt = r.get_json()
    assert r.headers["Location"].endswith(f"/appointments/{appt['id']}")
    assert appt["starts_at"] == at(7, 9, 30) + ":00"
    assert appt["duration_min"] == 30  # from the service
    assert appt["ends_at"] == at(7, 10, 0) + ":00"
    assert appt["status"] == "booked" and appt["confirmation_status"] == "" and appt["confirmed_at"] is None
    assert (appt["patient_external_id"], appt["doctor_external_id"]) == ("P1", "D1")
    assert (appt["cabinet_number"], appt["service_code"]) == ("101", "B1")
    assert api.get(f"/appointments/{appt['id']}").get_json() == appt
    assert book(at(7, 11)).get_json()["duration_min"] == 20  # no service: 20 minutes


def test_references_by_mis_codes(api: Api, patient: dict, doctor: dict) -> None:
    api.post("/cabinets", {"number": "7"})
    api.post("/services", {"code": "S"})  # invalid: no name; nothing created
    r = api.post(
        "/appointments",
        {
            "patient_external_id": "P1",
            "doctor_external_id": "D1",
            "cabinet_number": "7",
            "starts_at": at(7, 10),
        },
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["patient_id"], body["doctor_id"], body["cabinet_number"]) == (
        patient["id"],
        doctor["id"],
        "7",
    )

    r = api.post(
        "/appointments", {"patient_external_id": "nobody", "doctor_external_id": "D1", "starts_at": at(7, 11)}
    )
    assert r.status_code == 422 and set(r.get_json()["fields"]) == {"patient_external_id"}
    r = api.post(
        "/appointments",
        {
            "patient_id": patient["id"],
            "patient_external_id": "P1",
            "doctor_id": doctor["id"],
            "starts_at": at(7, 11),
        },
    )
    assert r.status_code == 422 and set(r.get_json()["fields"]) == {"patient_external_id"}


def test_list_by_day_and_doctor(api: Api, book: Book, patient: dict, doctor: dict) -> None:
    other = api.post("/employees", {"last_name": "Белова", "first_name": "Светлана"}).get_json()
    a = book(at(7, 9)).get_json()
    b = api.post(
        "/appointments", {"patient_id": patient["id"], "doctor_id": other["id"], "starts_at": at(7, 8)}
    ).get_json()
    c = book(at(7, 23, 40)).get_json()
    book(at(8, 0, 0))  # the next day
    book(at(6, 23, 59))  # the day before

    listing = api.get("/appointments", query_string={"date": day(7).isoformat()}).get_json()
    assert [x["id"] for x in listing["items"]] == [b["id"], a["id"], c["id"]] and listing["total"] == 3
    mine = api.get("/appointments", query_string={"date": day(7).isoformat(), "doctor_id": doctor["id"]})
    assert [x["id"] for x in mine.get_json()["items"]] == [a["id"], c["id"]]
    assert api.get("/appointments", query_string={"date": day(30).isoformat()}).get_json()["items"] == []
    for far in ("9999-12-31", "0001-01-01"):
        assert api.get("/appointments", query_string={"date": far}).get_json()["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"date": "завтра"},
        {"date": "2026-02-30"},
        {"date": "2026-03-01", "doctor_id": "x"},
        {"date": "2026-03-01", "doctor_id": "0"},
    ],
)
def test_list_needs_a_valid_date(api: Api, query: dict) -> None:
    r = api.get("/appointments", query_string=query)
    assert r.status_code == 422 and r.get_json()["fields"]


def test_double_booking_is_rejected(api: Api, book: Book, count, patient: dict, doctor: dict) -> None:  # type: ignore[no-untyped-def]
    first = book(at(7, 10, 0), duration_min=30).get_json()  # 10:00–10:30
    for start, minutes in ((at(7, 10, 0), 20), (at(7, 10, 20), 20), (at(7, 9, 45), 20), (at(7, 9, 0), 180)):
        r = book(start, duration_min=minutes)
        assert r.status_code == 409, (start, minutes)
        assert "starts_at" in r.get_json()["fields"]
        assert f"№{first['id']}" in r.get_json()["fields"]["starts_at"]
    assert count(Appointment) == 1
    # Touching ends are fine, and so is another doctor at the same time.
    assert book(at(7, 10, 30)).status_code == 201
    assert book(at(7, 9, 40)).status_code == 201  # 9:40–10:00
    other = api.post("/employees", {"last_name": "Другой", "first_name": "Врач"}).get_json()
    r = api.post(
        "/appointments", {"patient_id": patient["id"], "doctor_id": other["id"], "starts_at": at(7, 10)}
    )
    assert r.status_code == 201


def test_cancelled_and_no_show_free_the_slot(api: Api, book: Book) -> None:
    a = book(at(7, 10)).get_json()
    assert api.post(f"/appointments/{a['id']}/cancel", {"reason": "Пациент заболел"}).status_code == 200
    b = book(at(7, 10))
    assert b.status_code == 201
    assert api.patch(f"/appointments/{b.get_json()['id']}", {"status": "no_show"}).status_code == 200
    assert book(at(7, 10)).status_code == 201


def test_moving_onto_a_busy_slot_changes_nothing(
    api: Api, book: Book, sessions: sessionmaker[Session]
) -> None:
    a = book(at(7, 10)).get_json()
    b = book(at(7, 11)).get_json()
    with transaction(sessions) as s:  # the robot confirmed b
        row = s.get(Appointment, b["id"])
        row.confirmation_status, row.confirmation_source = "confirmed", "mango"
    before = api.get(f"/appointments/{b['id']}").get_json()
    r = api.patch(f"/appointments/{b['id']}", {"starts_at": at(7, 10, 10), "extra_info": "перенос"})
    assert r.status_code == 409
    assert api.get(f"/appointments/{b['id']}").get_json() == before  # time, text, confirmation intact
    assert api.get(f"/appointments/{a['id']}").get_json()["starts_at"] == a["starts_at"]


def test_moving_clears_the_confirmation(api: Api, book: Book, sessions: sessionmaker[Session]) -> None:
    b = book(at(7, 11)).get_json()
    with transaction(sessions) as s:
        row = s.get(Appointment, b["id"])
        row.confirmation_status, row.confirmation_source = "confirmed", "mango"
    kept = api.patch(f"/appointments/{b['id']}", {"extra_info": "Нужна справка"}).get_json()
    assert kept["confirmation_status"] == "confirmed"
    moved = api.patch(f"/appointments/{b['id']}", {"starts_at": at(7, 12)}).get_json()
    assert moved["starts_at"] == at(7, 12) + ":00" and moved["confirmation_status"] == ""


def test_cancel(api: Api, book: Book) -> None:
    a = book(at(7, 10)).get_json()
    r = api.post(f"/appointments/{a['id']}/cancel", {"reason": "Перенос по просьбе пациента"})
    assert r.status_code == 200
    assert r.get_json()["status"] == "cancelled"
    assert r.get_json()["cancel_reason"] == "Перенос по просьбе пациента"
    # Cancelling again is a no-op that keeps the first reason.
    again = api.post(f"/appointments/{a['id']}/cancel", {"reason": "другая"})
    assert again.status_code == 200 and again.get_json()["cancel_reason"] == "Перенос по просьбе пациента"
    assert api.post("/appointments/987654/cancel", {"reason": "x"}).status_code == 404
    for body in ({}, {"reason": ""}, {"reason": "x" * 301}, {"reason": "x", "force": True}):
        assert api.post(f"/appointments/{a['id']}/cancel", body).status_code == 422


def test_cancelled_appointment_cannot_be_changed(api: Api, book: Book) -> None:
    a = book(at(7, 10)).get_json()
    cancelled = api.post(f"/appointments/{a['id']}/cancel", {"reason": "Отмена"}).get_json()
    for change in ({"starts_at": at(7, 12)}, {"status": "booked"}, {"extra_info": "x"}):
        r = api.patch(f"/appointments/{a['id']}", change)
        assert r.status_code == 409, change
        assert "status" in r.get_json()["fields"]
    assert api.get(f"/appointments/{a['id']}").get_json() == cancelled
    # Re-sending what is stored is not a change.
    assert api.patch(f"/appointments/{a['id']}", {"status": "cancelled"}).status_code == 200


def test_a_visit_that_took_place_cannot_be_cancelled(api: Api, book: Book) -> None:
    a = book(at(7, 10)).get_json()
    assert api.patch(f"/appointments/{a['id']}", {"status": "done"}).status_code == 200
    assert api.post(f"/appointments/{a['id']}/cancel", {"reason": "x"}).status_code == 409
    assert api.get(f"/appointments/{a['id']}").get_json()["status"] == "done"


def test_cancel_reason_only_with_cancellation(api: Api, book: Book) -> None:
    r = book(at(7, 10), cancel_reason="почему-то")
    assert r.status_code == 422 and "cancel_reason" in r.get_json()["fields"]
    a = book(at(7, 10)).get_json()
    r = api.patch(f"/appointments/{a['id']}", {"status": "cancelled", "cancel_reason": "Заболел"})
    assert r.status_code == 200 and r.get_json()["cancel_reason"] == "Заболел"


def test_booking_in_the_past(api: Api, book: Book, count, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    r = book(at(-3, 10))
    assert r.status_code == 422 and "starts_at" in r.get_json()["fields"]
    assert count(Appointment) == 0
    # Importing history: allowed explicitly, or with a status other than booked.
    r = api.post(
        "/appointments?allow_past=true",
        {"patient_external_id": "P1", "doctor_external_id": "D1", "starts_at": at(-3, 10)},
    )
    assert r.status_code == 201
    assert book(at(-3, 11), status="done").status_code == 201
    # The appointment under way right now can still be booked (a walk-in patient).
    with sessions() as s:
        now = clinic_now(s)
    started = (now - timedelta(minutes=5)).isoformat(timespec="minutes")
    assert book(started, duration_min=30).status_code == 201
    # A stored past appointment cannot be moved within the past without allow_past.
    old = r.get_json()
    assert api.patch(f"/appointments/{old['id']}", {"starts_at": at(-3, 12)}).status_code == 422
    assert api.patch(f"/appointments/{old['id']}?allow_past=1", {"starts_at": at(-3, 12)}).status_code == 200


def test_time_with_offset_is_converted_to_clinic_time(
    api: Api, book: Book, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        s.add(ClinicSettings(timezone="Asia/Yekaterinburg"))  # UTC+5
    d = day(7).isoformat()
    r = book(f"{d}T05:00:00Z")
    assert r.status_code == 201 and r.get_json()["starts_at"] == f"{d}T10:00:00"
    r = book(f"{d}T12:00+03:00")
    assert r.status_code == 201 and r.get_json()["starts_at"] == f"{d}T14:00:00"


def test_inactive_doctor_cannot_be_booked(api: Api, book: Book, doctor: dict) -> None:
    api.patch(f"/employees/{doctor['id']}", {"is_active": False})
    r = book(at(7, 10))
    assert r.status_code == 422 and "doctor_id" in r.get_json()["fields"]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"starts_at": None}, {"starts_at"}),
        ({"starts_at": "завтра в 10"}, {"starts_at"}),
        ({"starts_at": "2030-02-30T10:00"}, {"starts_at"}),
        ({"starts_at": "2030-01-01T25:00"}, {"starts_at"}),
        ({"starts_at": "2030-01-01"}, {"starts_at"}),
        ({"starts_at": 1893456000}, {"starts_at"}),
        ({"starts_at": "2150-01-01T10:00"}, {"starts_at"}),
        ({"starts_at": "9999-12-31T23:00-05:00"}, {"starts_at"}),
        ({"starts_at": "0001-01-01T00:00+05:00"}, {"starts_at"}),
        ({"starts_at": "2030-01-01T10:00+25:00"}, {"starts_at"}),
        ({"duration_min": 0}, {"duration_min"}),
        ({"duration_min": 10_000}, {"duration_min"}),
        ({"status": "deleted"}, {"status"}),
        ({"extra_info": "x" * 2001}, {"extra_info"}),
        ({"patient_id": "1"}, {"patient_id"}),
        ({"patient_id": 2**31}, {"patient_id"}),
        ({"patient_id": 2**70}, {"patient_id"}),
        ({"patient_id": -1}, {"patient_id"}),
        ({"patient_id": 999_999}, {"patient_id"}),
        ({"doctor_id": 999_999}, {"doctor_id"}),
        ({"cabinet_id": 999_999}, {"cabinet_id"}),
        ({"service_id": 999_999}, {"service_id"}),
        ({"service_code": "nope"}, {"service_code"}),
        ({"cabinet_number": "нет"}, {"cabinet_number"}),
        ({"doctor": "Орлова"}, {"doctor"}),
    ],
)
def test_invalid_appointment_is_422(book: Book, count, fields: dict, bad: set) -> None:  # type: ignore[no-untyped-def]
    r = book(**{"starts_at": at(7, 10), **fields})
    assert r.status_code == 422, r.get_json()
    assert set(r.get_json()["fields"]) == bad
    assert count(Appointment) == 0


def test_patient_and_doctor_are_required(api: Api, count) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/appointments", {"starts_at": at(7, 10)})
    assert r.status_code == 422 and "patient_id" in r.get_json()["fields"]
    assert count(Appointment) == 0


def test_upsert_is_idempotent(api: Api, patient: dict, doctor: dict, count) -> None:  # type: ignore[no-untyped-def]
    body = {
        "patient_external_id": "P1",
        "doctor_external_id": "D1",
        "starts_at": at(7, 10),
        "extra_info": "Запись по телефону",
    }
    first = api.put("/appointments/by-external/T-1", body)
    assert first.status_code == 201, first.get_json()
    for _ in range(2):
        again = api.put("/appointments/by-external/T-1", body)
        assert again.status_code == 200  # no 409 against itself
        assert again.get_json()["id"] == first.get_json()["id"]
    assert count(Appointment) == 1
    moved = api.put("/appointments/by-external/T-1", {"starts_at": at(7, 11)}).get_json()
    assert moved["starts_at"] == at(7, 11) + ":00" and moved["extra_info"] == "Запись по телефону"
    assert api.get("/appointments/by-external/T-1").get_json() == moved

    # The МИС re-sends an appointment it cancelled: still idempotent, still closed to changes.
    cancelled = {**body, "starts_at": at(7, 11), "status": "cancelled", "cancel_reason": "Отмена в МИС"}
    assert api.put("/appointments/by-external/T-1", cancelled).get_json()["status"] == "cancelled"
    assert api.put("/appointments/by-external/T-1", cancelled).status_code == 200
    assert api.put("/appointments/by-external/T-1", {**cancelled, "starts_at": at(7, 12)}).status_code == 409
    assert count(Appointment) == 1


def test_upsert_of_a_past_appointment_resent_unchanged_is_fine(api: Api, patient: dict, doctor: dict) -> None:
    body = {"patient_id": patient["id"], "doctor_id": doctor["id"], "starts_at": at(-1, 10)}
    assert api.put("/appointments/by-external/OLD?allow_past=true", body).status_code == 201
    assert api.put("/appointments/by-external/OLD", body).status_code == 200


def test_times_keep_seconds_but_not_microseconds(book: Book) -> None:
    start = datetime.fromisoformat(at(7, 10)).replace(second=15, microsecond=123456)
    assert book(start.isoformat()).get_json()["starts_at"] == start.replace(microsecond=0).isoformat()
