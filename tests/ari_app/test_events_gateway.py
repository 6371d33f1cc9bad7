"""ari_app's events listener for the browsers (issue 11, point 1): the real AriApp code with
its call-log process on the test database, reached over TCP by aiohttp clients. A stream is a
coroutine, not a thread; tokens are checked against the user's session; a 9th tab of one
user ends the oldest; a thousand streams opened and dropped leave nothing behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiorun import run
from eventskit import EventsListener, next_event, rss_kib, wait_until
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker

from ari_app.events_gateway import MAX_STREAMS_PER_USER, SESSION_ENDED, TOO_MANY_TABS
from clinic.config import Config
from clinic.db import transaction
from clinic.events_token import SALT, make_token
from clinic.models import User
from clinic.services.users import end_sessions

ORIGIN = "http://clinic.test:8000"


@pytest.fixture()
def listener(config: Config, sessions: sessionmaker[Session]) -> Iterator[EventsListener]:
    events = EventsListener(config, origins=(ORIGIN,), keepalive=0.3)
    try:
        yield events
    finally:
        events.stop()


@pytest.fixture()
def make_user(sessions: sessionmaker[Session]) -> Any:
    def make(login: str, **fields: Any) -> int:
        with transaction(sessions) as s:
            user = User(login=login, full_name=login.title(), password_hash="x", **fields)
            s.add(user)
            s.flush()
            return user.id

    return make


def _url(listener: EventsListener, token: str) -> str:
    return f"{listener.url}/events?token={token}"


async def _get(url: str, origin: str = ORIGIN) -> tuple[int, dict[str, str], str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Origin": origin}) as resp:
        if resp.content_type == "text/event-stream":
            return resp.status, dict(resp.headers), resp.content_type, await next_event(resp)
        return resp.status, dict(resp.headers), resp.content_type, await resp.json()


def test_a_good_token_opens_the_stream_for_the_web_apps_origin_only(
    listener: EventsListener, config: Config, make_user: Any
) -> None:
    uid = make_user("reg")
    status, headers, kind, first = run(lambda: _get(_url(listener, make_token(config.secret_key, uid, 0))))
    assert (status, kind) == (200, "text/event-stream")
    assert first == ("hello", {"calls": []})
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Credentials" not in headers

    token = make_token(config.secret_key, uid, 0)
    _, headers, _, _ = run(lambda: _get(_url(listener, token), origin="http://evil.test"))
    assert "Access-Control-Allow-Origin" not in headers  # the browser will not hand it over


def _expired(config: Config, uid: int) -> str:
    class TwoMinutesAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 120  # the clock of a token issued two minutes ago

    return URLSafeTimedSerializer(config.secret_key, salt=SALT, signer=TwoMinutesAgo).dumps(
        {"uid": uid, "epoch": 0}
    )


def test_forged_expired_and_stale_tokens_are_401_with_no_data(
    listener: EventsListener, config: Config, make_user: Any, sessions: sessionmaker[Session]
) -> None:
    uid = make_user("reg")
    gone = make_user("gone", is_active=False)
    locked = make_user("locked", locked_at=datetime.now(UTC))
    good = make_token(config.secret_key, uid, 0)
    with transaction(sessions) as s:
        end_sessions(s.get(User, uid))  # logout: the epoch moves on, the token is stale
    tokens = {
        "none": "",
        "garbage": "abc.def",
        "forged": make_token("not-the-key", uid, 1),
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "expired": _expired(config, uid),
        "stale": good,
        "disabled": make_token(config.secret_key, gone, 0),
        "locked": make_token(config.secret_key, locked, 0),
        "other salt": URLSafeTimedSerializer(config.secret_key, salt="other").dumps({"uid": uid, "epoch": 1}),
    }
    for name, token in tokens.items():
        status, headers, kind, body = run(lambda t=token: _get(_url(listener, t)))
        assert (status, kind) == (401, "application/json"), name
        assert "обновите страницу" in body["error"], name
        assert headers["Cache-Control"] == "no-store"
    assert listener.counts() == (0, 0)
    # the same user with the current epoch is let in
    status, _, _, _ = run(lambda: _get(_url(listener, make_token(config.secret_key, uid, 1))))
    assert status == 200


def test_logout_ends_an_open_stream(
    listener: EventsListener, config: Config, make_user: Any, sessions: sessionmaker[Session]
) -> None:
    uid = make_user("reg")

    async def scenario() -> tuple[str, Any]:
        token = make_token(config.secret_key, uid, 0)
        async with aiohttp.ClientSession() as http, http.get(_url(listener, token)) as resp:
            assert (await next_event(resp))[0] == "hello"
            with transaction(sessions) as s:
                end_sessions(s.get(User, uid))
            return await next_event(resp)  # at the next keep-alive check

    assert run(scenario, timeout=30) == ("closed", {"reason": SESSION_ENDED})
    wait_until(lambda: listener.counts() == (0, 0), 10, "the stream is gone")


def test_a_ninth_tab_ends_the_oldest_with_the_reason(
    listener: EventsListener, config: Config, make_user: Any
) -> None:
    uid, other = make_user("reg"), make_user("other")

    async def scenario() -> tuple[tuple[str, Any], list[int]]:
        async with aiohttp.ClientSession() as http:
            mine = []
            for _ in range(MAX_STREAMS_PER_USER):
                resp = await http.get(_url(listener, make_token(config.secret_key, uid, 0)))
                assert (await next_event(resp))[0] == "hello"
                mine.append(resp)
            theirs = await http.get(_url(listener, make_token(config.secret_key, other, 0)))
            assert (await next_event(theirs))[0] == "hello"
            ninth = await http.get(_url(listener, make_token(config.secret_key, uid, 0)))
            assert (await next_event(ninth))[0] == "hello"
            said = await next_event(mine[0])
            with pytest.raises(EOFError):
                await next_event(mine[0])  # and then the server closed it
            held = list(listener.counts())
            for resp in [*mine, theirs, ninth]:
                resp.close()
            return said, held

    said, held = run(scenario, timeout=60)
    assert said == ("closed", {"reason": TOO_MANY_TABS})
    assert "слишком много вкладок" in TOO_MANY_TABS
    assert held == [MAX_STREAMS_PER_USER + 1, MAX_STREAMS_PER_USER + 1]  # 8 of his, 1 of the other
    wait_until(lambda: listener.counts() == (0, 0), 10, "every stream is gone")


def _churn(listener: EventsListener, token: str, count: int, at_once: int = 50) -> None:
    """Open `count` streams, `at_once` at a time, read their hello, drop the connection."""

    async def scenario() -> None:
        connector = aiohttp.TCPConnector(limit=at_once, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(count // at_once):
                opened = [await http.get(_url(listener, token)) for _ in range(at_once)]
                for resp in opened:
                    assert (await next_event(resp))[0] == "hello"
                for resp in opened:
                    resp.close()  # the tab closed: the socket goes, nothing is said

    run(scenario, timeout=600)
    wait_until(lambda: listener.counts() == (0, 0), 20, "every dropped stream is forgotten")


def test_a_thousand_streams_opened_and_dropped_leave_nothing_behind(
    config: Config, sessions: sessionmaker[Session], make_user: Any
) -> None:
    # a keep-alive far away: a dropped tab must be noticed when it goes, not at the next write
    listener = EventsListener(config, origins=(ORIGIN,), keepalive=600)
    try:
        listener.app.gateway.per_user = 10_000  # the per-user limit is not what closes them
        tokens = [make_token(config.secret_key, make_user(f"reg{i}"), 0) for i in range(2)]
        _churn(listener, tokens[0], 200)  # warm up: imports, caches, the allocator's arenas
        tasks, rss = listener.tasks(), rss_kib()
        _churn(listener, tokens[1], 1000)
        assert listener.tasks() <= tasks  # no task left per stream
        assert rss_kib() <= rss * 1.10
    finally:
        listener.stop()


def test_logout_ends_a_busy_stream_too(
    listener: EventsListener, config: Config, make_user: Any, sessions: sessionmaker[Session]
) -> None:
    """Events every 50 ms, well inside the 0.3 s keep-alive: the session is checked on time
    all the same (it used to be checked only when the stream fell quiet)."""
    uid = make_user("busy")

    async def publish_forever() -> None:
        while True:
            listener.app.notifier.publish("tick", {}, user_ids={uid}, everyone=False)
            await asyncio.sleep(0.05)  # the pace of the traffic, not a synchronisation

    publisher = asyncio.run_coroutine_threadsafe(publish_forever(), listener.loop)

    async def scenario() -> tuple[str, Any]:
        token = make_token(config.secret_key, uid, 0)
        async with aiohttp.ClientSession() as http, http.get(_url(listener, token)) as resp:
            assert (await next_event(resp))[0] == "hello"
            assert (await next_event(resp))[0] == "tick"
            with transaction(sessions) as s:
                end_sessions(s.get(User, uid))
            while True:
                event = await next_event(resp)
                if event[0] != "tick":
                    return event

    try:
        assert run(scenario, timeout=30) == ("closed", {"reason": SESSION_ENDED})
    finally:
        publisher.cancel()
    wait_until(lambda: listener.counts() == (0, 0), 10, "the stream is gone")
