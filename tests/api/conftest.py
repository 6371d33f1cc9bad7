"""Fixtures for the /api/v1 tests: the real app over the real (migrated) database, a client
that sends the bearer token, and builders for the records appointments refer to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from clinic.config import Config
from clinic.db import transaction
from clinic.services.api_tokens import create_token
from webhooks.app import create_app

PREFIX = "/api/v1"


class Api:
    """A test client bound to /api/v1 that authenticates like the МИС does."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        all_headers = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        if json is not None:
            kwargs["json"] = json
        response = self.client.open(PREFIX + path, method=method, headers=all_headers, **kwargs)
        # Whatever happens, the API answers JSON and never with an unhandled error.
        assert response.status_code != 500, response.get_data(as_text=True)
        assert response.mimetype == "application/json", (response.status_code, response.data[:200])
        return response

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("PUT", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("PATCH", path, json, **kw)


@pytest.fixture()
def app(config: Config, sessions: sessionmaker[Session]) -> Flask:
    return create_app(config, session_factory=sessions)


@pytest.fixture()
def token(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as s:
        _, plain = create_token(s, "МИС КСАМУ")
    return plain


@pytest.fixture()
def api(app: Flask, token: str) -> Api:
    return Api(app.test_client(), token)


@pytest.fixture()
def count(sessions: sessionmaker[Session]) -> Callable[[type], int]:
    """Rows of a model in the database, read in a fresh session."""

    def rows(model: type) -> int:
        with sessions() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    return rows


def day(offset: int) -> date:
    """A day relative to today; bookings in tests go a week ahead so "the past" never bites."""
    return date.today() + timedelta(days=offset)


def at(offset_days: int, hh: int, mm: int = 0) -> str:
    return datetime.combine(day(offset_days), time(hh, mm)).isoformat(timespec="minutes")


@pytest.fixture()
def doctor(api: Api) -> dict[str, Any]:
    r = api.post(
        "/employees",
        {
            "external_id": "D1",
            "last_name": "Орлова",
            "first_name": "Наталья",
            "patronymic": "Викторовна",
            "specialty": "Терапевт",
        },
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


@pytest.fixture()
def patient(api: Api) -> dict[str, Any]:
    r = api.post(
        "/patients",
        {"external_id": "P1", "last_name": "Иванов", "first_name": "Иван", "phone": "+7 916 123-45-67"},
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


@pytest.fixture()
def book(api: Api, doctor: dict[str, Any], patient: dict[str, Any]) -> Callable[..., TestResponse]:
    """POST /appointments with defaults for the fixture patient and doctor."""

    def make(starts_at: str, **fields: Any) -> TestResponse:
        body = {"patient_id": patient["id"], "doctor_id": doctor["id"], "starts_at": starts_at, **fields}
        return api.post("/appointments", body)

    return make
