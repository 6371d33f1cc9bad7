"""Bearer tokens: only the digest is stored, and a missing, wrong or revoked token gets 401 JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import ApiToken, Patient
from clinic.security import token_digest
from clinic.services.api_tokens import authenticate, revoke_token

from .conftest import PREFIX, Api

pytestmark = pytest.mark.db


def _assert_401(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] and body["fields"] == {}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer mis_not-a-real-token",
        "Bearer " + "x" * 5000,
        "Bearer токен",
    ],
)
def test_missing_or_bad_token_is_401(app: Flask, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    _assert_401(app.test_client().get(PREFIX + "/patients", headers=headers))


def test_bad_token_cannot_write(app: Flask, count) -> None:  # type: ignore[no-untyped-def]
    r = app.test_client().post(
        PREFIX + "/patients",
        json={"last_name": "А", "first_name": "Б"},
        headers={"Authorization": "Bearer nope"},
    )
    _assert_401(r)
    assert count(Patient) == 0


def test_unknown_paths_also_need_a_token(app: Flask) -> None:
    _assert_401(app.test_client().get(PREFIX + "/no-such-thing"))


def test_valid_token_works_and_only_its_digest_is_stored(
    api: Api, token: str, sessions: sessionmaker[Session]
) -> None:
    assert api.get("/patients").status_code == 200
    with sessions() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_sha256 == token_digest(token)
        assert token not in (row.token_sha256, row.name)
        assert row.last_used_at is not None


def test_scheme_is_case_insensitive(app: Flask, token: str) -> None:
    r = app.test_client().get(PREFIX + "/patients", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200


def test_revoked_token_is_401(api: Api, sessions: sessionmaker[Session]) -> None:
    assert api.get("/patients").status_code == 200
    with transaction(sessions) as s:
        revoke_token(s, s.scalars(select(ApiToken.id)).one())
    _assert_401(api.get("/patients"))


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive UTC; PostgreSQL an aware time in the server's zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_last_used_at_is_refreshed_at_most_once_a_minute(token: str, sessions: sessionmaker[Session]) -> None:
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with transaction(sessions) as s:
        assert authenticate(s, token, now=t0) is not None
    with transaction(sessions) as s:
        authenticate(s, token, now=t0 + timedelta(seconds=30))
    with sessions() as s:
        assert _utc(s.scalars(select(ApiToken.last_used_at)).one()) == t0
    with transaction(sessions) as s:
        authenticate(s, token, now=t0 + timedelta(minutes=2))
    with sessions() as s:
        assert _utc(s.scalars(select(ApiToken.last_used_at)).one()) == t0 + timedelta(minutes=2)


def test_openapi_document_needs_no_token(app: Flask) -> None:
    r = app.test_client().get(PREFIX + "/openapi.json")
    assert r.status_code == 200 and r.get_json()["openapi"].startswith("3.1")
