"""The telephony pages without a PBX: the window's labels, the appointment's «Позвонить
пациенту», «Найти пациента», the call log and missed calls from the database, and a clear
JSON 503 when call control is not running."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Call

from .support import Web


def test_window_shows_the_manuals_buttons_and_explains_a_missing_extension(registrar_web: Web) -> None:
    page = registrar_web.text("/phone")
    for label in (
        "Прием по телефону",
        "Линия 1",
        "Звонок",
        "Говорить",
        "Удержание",
        "Конференция",
        "Запись",
        "Перевод",
        "Найти пациента",
        "Закрыть",
        "ABC",
        "WXYZ",
    ):
        assert label in page, label
    assert "не настроен добавочный номер SIP" in page  # the fixture registrar has no extension


def test_appointment_menu_dials_the_patient_from_the_window(
    registrar_web: Web, clinic: Callable[..., Any]
) -> None:
    doctor = clinic("doctor")
    patient = clinic("patient", last_name="Звонков", phone="+79161234567")
    appt = clinic("appointment", patient_id=patient, doctor_id=doctor, starts_at=datetime(2025, 5, 22, 9, 30))
    day = registrar_web.text("/schedule?date=2025-05-22")
    assert f"/phone/appointment/{appt}" in day and "Позвонить пациенту" in day
    resp = registrar_web.get(f"/phone/appointment/{appt}")
    assert resp.status_code == 302
    assert f"patient_id={patient}" in resp.location and "dial=1" in resp.location
    assert f"appointment_id={appt}" in resp.location and "number=%2B79161234567" in resp.location
    window = registrar_web.text(resp.location)
    assert 'data-autodial="1"' in window and "Звонков" in window


def test_find_patient_by_number_or_name(registrar_web: Web, clinic: Callable[..., Any]) -> None:
    clinic("patient", last_name="Звонков", phone="+79161234567")
    clinic("patient", last_name="Иванова", phone="+79030000000")
    by_number = registrar_web.client.get("/phone/find?q=8 916 123-45-67").get_json()
    assert [p["name"] for p in by_number["patients"]] == ["Звонков Пётр"]
    by_name = registrar_web.client.get("/phone/find?q=иванов").get_json()
    assert [p["name"] for p in by_name["patients"]] == ["Иванова Пётр"]
    assert (
        registrar_web.client.get("/phone/find?q=").get_json()["error"] == "Введите номер телефона или фамилию"
    )


def test_commands_answer_json_503_when_call_control_is_down(registrar_web: Web) -> None:
    token = registrar_web.csrf("/phone")
    resp = registrar_web.client.post(
        "/phone/api/calls", json={"target": "102"}, headers={"X-CSRFToken": token}
    )
    assert resp.status_code == 503
    assert resp.get_json()["error"].startswith("Сервис телефонии недоступен")
    bad = registrar_web.client.post(
        "/phone/api/calls", data="[]", content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert bad.status_code == 400 and bad.get_json()["error"] == "Тело запроса должно быть JSON-объектом"
    assert (
        registrar_web.client.post(
            "/phone/api/calls/abc/explode", json={}, headers={"X-CSRFToken": token}
        ).status_code
        == 404
    )


def test_call_log_and_missed_calls(
    registrar_web: Web, admin_web: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    now = datetime.now().astimezone()
    with transaction(sessions) as s:
        s.add_all(
            [
                Call(
                    uid="out1",
                    direction="outbound",
                    user_id=registrar_id,
                    number="+79161234567",
                    state="ended",
                    result="answered",
                    started_at=now - timedelta(minutes=5),
                    answered_at=now - timedelta(minutes=5),
                    ended_at=now - timedelta(minutes=3),
                ),
                Call(
                    uid="miss1",
                    direction="inbound",
                    number="+79031112233",
                    state="ended",
                    result="missed",
                    started_at=now - timedelta(minutes=1),
                    ended_at=now - timedelta(minutes=1),
                ),
            ]
        )
    log = registrar_web.text("/calls")
    assert 'data-call-uid="out1"' in log and "2:00" in log and "Отвечен" in log
    assert 'data-call-uid="miss1"' not in log  # nobody's call: registrars see their own
    assert 'data-call-uid="miss1"' in admin_web.text("/calls")
    missed = registrar_web.text("/calls/missed")
    assert 'data-call-uid="miss1"' in missed and "Перезвонить" in missed and "callback_of=miss1" in missed
    assert 'data-call-uid="out1"' not in missed


def test_hostile_json_bodies_are_400_not_500(registrar_web: Web) -> None:
    """Issue 12 point 13: deep nesting (RecursionError) and lone surrogates, through the window."""
    token = registrar_web.csrf("/phone")
    for body in ("[" * 50_000, '{"target": "\\ud800"}'):
        resp = registrar_web.client.post(
            "/phone/api/calls", data=body, content_type="application/json", headers={"X-CSRFToken": token}
        )
        assert resp.status_code == 400, body[:20]
        assert resp.get_json()["error"].startswith("Некорректный JSON")
