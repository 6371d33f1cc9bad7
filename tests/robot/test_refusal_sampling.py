"""Unauthenticated requests to the public hooks are counted and sampled, not stored one by
one (issue 12, point 7): a flood cannot fill «Журнал обмена» or hold the database writer."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.models import ExchangeLogEntry
from webhooks.app import create_app
from webhooks.hook_log import RefusalSampler

from .conftest import SECRET

URL = "/MangoOffice/UpdateStatus"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def hooks(config: Config, sessions: sessionmaker[Session], system_id: int) -> FlaskClient:
    """Our :55055 listener with the Mango entry (and its webhook secret) configured."""
    return create_app(config, public_only=True, session_factory=sessions).test_client()


def _rows(sessions: sessionmaker[Session]) -> list[ExchangeLogEntry]:
    with sessions() as session:
        return list(session.scalars(select(ExchangeLogEntry).order_by(ExchangeLogEntry.id)))


def test_a_flood_of_forged_callbacks_leaves_one_row_a_minute(
    hooks: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    clock = Clock()
    hooks.application.extensions["mis_refusals"] = RefusalSampler(every_s=60.0, clock=clock)
    body = json.dumps({"id": "1", "status": 1})
    for _ in range(50):
        answer = hooks.post(f"{URL}?token=wrong", data=body, content_type="application/json")
        assert answer.status_code == 403  # every one is answered
    for _ in range(5):
        assert hooks.post("/smsru/callback", data={"data[0]": "x", "hash": "y"}).status_code in (400, 403)
    rows = _rows(sessions)
    assert [(r.owner, r.http_status) for r in rows] == [
        ("Mango Office UpdateStatus", 403),
        ("sms.ru Отчёты о доставке", rows[1].http_status),
    ]
    clock.now += 61
    hooks.post(f"{URL}?token=wrong", data=body, content_type="application/json")
    last = _rows(sessions)[-1]
    assert last.http_status == 403 and "ещё 49 таких же отказов" in last.payload
    # an authenticated sender is never sampled: each of its requests has its row
    for _ in range(3):
        hooks.post(f"{URL}?token={SECRET}", data="{", content_type="application/json")
    assert [r.http_status for r in _rows(sessions)[-3:]] == [400, 400, 400]
