"""Live call events do not hold the web app's threads (issue 11, point 1): the page gets a
short-lived token from the web app and opens its stream on ari_app's events listener. With
50 streams open, the web app served by waitress (as in production: 8 threads) still answers
its pages at once."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiorun import run
from eventskit import EventsListener, next_event
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from waitress.server import create_server

from clinic.config import Config
from clinic.db import transaction
from clinic.events_token import read_token
from clinic.models import User
from clinic.services.users import end_sessions
from launcher.serve import waitress_options
from webhooks.app import create_app

from .conftest import REGISTRAR_PASSWORD
from .support import Web, csrf_from


def test_the_token_needs_a_session(anon: Web) -> None:
    response = anon.get("/phone/events-token")
    assert response.status_code in (302, 401)
    assert "\"token\"" not in response.text


def test_the_token_names_the_user_and_his_session(
    app: Flask, registrar_web: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    config: Config = app.config["MIS"]
    answer = registrar_web.client.get("/phone/events-token")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    data = answer.get_json()
    assert data["url"] == f"http://{config.events_host}:{config.events_port}/events"
    assert read_token(config.secret_key, data["token"]) == (registrar_id, 0)
    assert read_token("another key", data["token"]) is None
    with transaction(sessions) as s:
        end_sessions(s.get(User, registrar_id))  # logout elsewhere: this session is over too
    assert registrar_web.client.get("/phone/events-token").status_code != 200


def test_the_web_relays_no_event_stream(registrar_web: Web) -> None:
    assert registrar_web.get("/phone/events").status_code == 404


@pytest.fixture()
def waitress_web(config: Config, sessions: sessionmaker[Session], listener: EventsListener) -> Iterator[str]:
    config = dataclasses.replace(config, events_port=listener.app.events_port)
    app = create_app(config, session_factory=sessions)
    options = {k: v for k, v in waitress_options(app).items() if k != "_quiet"}
    server = create_server(app, host="127.0.0.1", port=0, **options)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(5)


STREAMS = 50


def test_fifty_open_streams_leave_the_web_app_answering(
    waitress_web: str, listener: EventsListener, registrar_id: int, sessions: Any
) -> None:

    listener.app.gateway.per_user = STREAMS  # one login here; the per-user limit is tested elsewhere

    async def scenario() -> list[int]:
        # one second per request: a deadline, not a measurement
        async with httpx.AsyncClient(base_url=waitress_web, timeout=1.0, trust_env=False) as web:
            form = await web.get("/login")
            await web.post("/login", data={"login": "reg", "password": REGISTRAR_PASSWORD,
                                           "csrf_token": csrf_from(form.text)})  # fmt: skip
            streams = []
            async with aiohttp.ClientSession() as http:
                for _ in range(STREAMS):  # what 50 tabs do
                    token = (await web.get("/phone/events-token")).json()
                    resp = await http.get(f"{token['url']}?token={token['token']}")
                    assert (await next_event(resp))[0] == "hello"
                    streams.append(resp)
                assert listener.counts() == (STREAMS, STREAMS)
                pages = ("/login", "/schedule", "/patients")
                statuses = [(await web.get(path)).status_code for path in pages]
                for resp in streams:
                    resp.close()
            return statuses

    assert run(scenario, timeout=120) == [302, 200, 200]  # /login sends a logged-in user on


def test_a_clinics_idle_keepalive_connections_do_not_lock_new_visitors_out(waitress_web: str) -> None:
    """Forty registrars' browsers keep a few connections each open between clicks. waitress
    stops accepting past its connection limit (100 by default), so a newcomer's page waited
    until an idle one timed out: the limit is raised (launcher/serve.py CONNECTION_LIMIT)."""
    host, port = waitress_web.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(250)]
    try:
        # a deadline, not a measurement: refused by the limit, this waits until it expires
        answer = httpx.get(f"{waitress_web}/login", timeout=10.0, trust_env=False)
        assert answer.status_code == 200
    finally:
        for sock in idle:
            sock.close()
