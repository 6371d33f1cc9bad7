"""The worker's live progress on ari_app's control API (issue 11, point 4): `POST /progress`
needs the control token, goes to the users named and to the active admins only (never to
the `all` subscribers of call events), and a malformed body is a 400 with a Russian reason
that reaches nobody. The real AriApp (its call-log process on the test database) answers
who the admins are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from eventskit import EventsListener
from sqlalchemy.orm import Session, sessionmaker

from ari_app.calls.notifier import Subscriber
from ari_app.control import make_app
from clinic.config import Config
from clinic.db import transaction
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, User

TOKEN = "pr0gress-t0ken"
GOOD = {"kind": "mailing", "id": 7, "sent": 100, "failed": 2, "left": 198, "rate": 33.5,
        "started_at": "2026-05-28T09:00:00+00:00"}  # fmt: skip


@pytest.fixture()
def listener(config: Config, sessions: sessionmaker[Session]) -> Iterator[EventsListener]:
    events = EventsListener(config)
    try:
        yield events
    finally:
        events.stop()


@pytest.fixture()
def people(sessions: sessionmaker[Session]) -> dict[str, int]:
    with transaction(sessions) as s:
        made = {
            name: User(login=name, full_name=name, password_hash="x", role=role, is_active=active)
            for name, role, active in (
                ("admin", ROLE_ADMIN, True),
                ("old_admin", ROLE_ADMIN, False),
                ("author", ROLE_REGISTRAR, True),
                ("other", ROLE_REGISTRAR, True),
            )
        }
        s.add_all(made.values())
        s.flush()
        return {k: u.id for k, u in made.items()}


def _exchange(
    listener: EventsListener, people: dict[str, int], requests: list[tuple[dict[str, str], Any]]
) -> tuple[list[tuple[int, Any]], dict[str, list[dict[str, Any]]]]:
    """POST each (headers, body) to /progress of a control API on the AriApp's own loop; then
    what every person's (and an `all`) subscriber got."""
    app_ = listener.app

    async def go() -> tuple[list[tuple[int, Any]], dict[str, list[dict[str, Any]]]]:
        subs: dict[str, Subscriber] = {k: app_.notifier.subscribe(uid) for k, uid in people.items()}
        subs["all"] = app_.notifier.subscribe(None)
        answers = []
        async with TestClient(TestServer(make_app(app_.service, app_.notifier, app_.ari, TOKEN))) as client:
            for headers, body in requests:
                kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
                resp = await client.post("/progress", headers=headers, **kwargs)
                answers.append((resp.status, await resp.json()))
        got = {}
        for name, sub in subs.items():
            got[name] = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
            app_.notifier.unsubscribe(sub)
        return answers, got

    return listener.run(go())


AUTH = {"X-Control-Token": TOKEN}


def test_progress_goes_to_the_named_users_and_the_active_admins_only(
    listener: EventsListener, people: dict[str, int]
) -> None:
    body = {**GOOD, "user_ids": [people["author"]], "admins": True}
    answers, got = _exchange(listener, people, [(AUTH, body)])
    assert answers == [(202, {"ok": True, "users": 2})]
    expected = {"event": "progress", "data": {**GOOD, "done": False}}
    assert got["author"] == [expected]
    assert got["admin"] == [expected]
    assert got["other"] == [] and got["old_admin"] == [] and got["all"] == []


def test_progress_needs_the_control_token(listener: EventsListener, people: dict[str, int]) -> None:
    body = {**GOOD, "admins": True}
    answers, got = _exchange(listener, people, [({}, body), ({"X-Control-Token": "wrong"}, body)])
    assert [status for status, _ in answers] == [401, 401]
    assert answers[0][1]["error"] == "Нет доступа к управлению звонками"
    assert all(events == [] for events in got.values())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**GOOD, "kind": "calls", "admins": True}, "Поле kind должно быть mailing или export"),
        ({**GOOD, "id": "7", "admins": True}, "Поле id должно быть положительным целым числом"),
        ({**GOOD, "sent": -1, "admins": True}, "Поле sent должно быть неотрицательным целым числом"),
        ({**GOOD, "left": None, "admins": True}, "Поле left должно быть неотрицательным целым числом"),
        ({**GOOD, "started_at": "вчера", "admins": True}, "Поле started_at должно быть датой ISO 8601"),
        ({**GOOD, "rate": "fast", "admins": True}, "Поле rate должно быть неотрицательным числом"),
        ({**GOOD, "user_ids": ["1"]}, "Поле user_ids должно быть списком номеров пользователей"),
        ({**GOOD, "admins": "yes"}, "Поле admins должно быть true или false"),
        (GOOD, "Не указано, кому показывать ход работы"),
        (b"[1, 2]", None),
        (b"{not json", None),
    ],
)
def test_a_bad_body_is_a_400_that_reaches_nobody(
    listener: EventsListener, people: dict[str, int], body: Any, reason: str | None
) -> None:
    answers, got = _exchange(listener, people, [({**AUTH, "Content-Type": "application/json"}, body)])
    status, answer = answers[0]
    assert status == 400 and answer["error"]
    if reason:
        assert answer == {"error": reason, "error_id": "bad_request"}
    assert all(events == [] for events in got.values())
