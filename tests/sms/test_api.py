"""POST /api/v1/sms and GET /api/v1/sms/{id} against the emulator."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from smsru.support import API_ID, Sms
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.models import Appointment, ClinicSettings
from clinic.services.api_tokens import create_token
from webhooks.app import create_app


@pytest.fixture()
def api(sessions: sessionmaker[Session], sms_config: Config, clinic: dict[str, int]) -> FlaskClient:
    with transaction(sessions) as s:
        settings = s.query(ClinicSettings).one()
        settings.sms_quiet_from = settings.sms_quiet_to = 0  # real clock here: no quiet hours
        # a visit in the real future, so its reminder is not "too late"
        s.get(Appointment, clinic["appointment"]).starts_at = datetime.now().replace(
            microsecond=0
        ) + timedelta(days=2)  # type: ignore[union-attr]
        _row, token = create_token(s, "МИС")
    app = create_app(sms_config, session_factory=sessions)
    app.config["TESTING"] = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _post(api: FlaskClient, body: Any, **kw: Any):  # type: ignore[no-untyped-def]
    response = api.post("/api/v1/sms", json=body, **kw)
    assert response.status_code != 500 and response.mimetype == "application/json", response.data
    return response


def test_send_by_appointment_then_read_with_delivery(
    api: FlaskClient, sms: Sms, clinic: dict[str, int]
) -> None:
    response = _post(api, {"appointment_id": clinic["appointment"]})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["state"] == "sent" and body["phone"] == "+79161234567"
    assert body["text"].startswith("Мария Петровна, ждём вас")
    again = _post(api, {"appointment_id": clinic["appointment"]})
    assert again.status_code == 200 and again.json["id"] == body["id"]
    assert len(sms.messages()) == 1
    sms.advance(10)  # emulator: 100 -> 101 -> 102 -> 103
    # no callback registered here: the worker's poll reads sms/status
    from clinic.services.settings import read_settings
    from clinic.sms import delivery, gateway, ledger

    factory = api.application.extensions["mis_sessions"]
    with factory() as s:
        settings = read_settings(s)
        s.expunge_all()
    client = gateway.make_client(api.application.config["MIS"], settings)
    assert delivery.poll_statuses(factory, client, now=ledger.utcnow() + timedelta(minutes=5)) == 1
    client.close()
    got = api.get(f"/api/v1/sms/{body['id']}")
    assert got.status_code == 200
    assert (got.json["delivery_code"], got.json["delivered"], got.json["cost"]) == (103, True, "3.00")


def test_phone_and_text_with_idempotency_key(api: FlaskClient, sms: Sms) -> None:
    body = {"phone": "8 (916) 765-43-21", "text": "Результаты анализов готовы", "idempotency_key": "mis-42"}
    first = _post(api, body)
    second = _post(api, body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"]
    assert [m["text"] for m in sms.messages(phone="79167654321")] == ["Результаты анализов готовы"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "+79161234567", "text": ""}, "text"),
        ({"phone": "123", "text": "Привет"}, "phone"),
        ({"phone": "+79161234567", "text": "Я" * 600}, "text"),
        ({"text": "Привет"}, "phone"),
        ({}, "text"),
        ({"appointment_id": "abc"}, "appointment_id"),
        ({"appointment_id": 99999}, "appointment_id"),
        ({"phone": "+79161234567", "text": 5}, "text"),
        ({"phone": "+79161234567", "text": "x", "bogus": 1}, "bogus"),
    ],
)
def test_bad_input_is_422_with_a_russian_reason_and_nothing_sent(
    api: FlaskClient, sms: Sms, body: dict[str, Any], field: str
) -> None:
    response = _post(api, body)
    assert response.status_code == 422, response.json
    assert field in response.json["fields"]
    assert response.json["error"]
    assert sms.messages() == []


def test_unknown_message_is_404_and_the_api_id_never_shows(api: FlaskClient, sms: Sms) -> None:
    assert api.get("/api/v1/sms/424242").status_code == 404
    assert api.get("/api/v1/sms/99999999999").status_code == 404
    sent = _post(api, {"phone": "+79161234567", "text": "Привет"})
    assert API_ID not in sent.get_data(as_text=True)


def test_gateway_refusal_is_recorded_not_an_http_error(api: FlaskClient, sms: Sms) -> None:
    sms.configure(balance=0)
    response = _post(api, {"phone": "+79161234567", "text": "Привет"})
    assert response.status_code == 201
    assert response.json["state"] == "failed" and response.json["gateway_code"] == 201
