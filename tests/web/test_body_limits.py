"""Every listener bounds the body it reads: 413, not a process swollen by one anonymous POST
(issue 12, point 3). Checked through a real waitress server, as production serves."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from waitress.server import create_server

from launcher.serve import waitress_options
from webhooks.app import HOOKS_MAX_BODY, WEB_MAX_BODY, create_app


def _serve(app: Any) -> Iterator[int]:
    options = {k: v for k, v in waitress_options(app).items() if k != "_quiet"}
    server = create_server(app, host="127.0.0.1", port=0, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        server.close()
        thread.join(5)


@pytest.fixture()
def web_port(config: Any, sessions: sessionmaker[Session]) -> Iterator[int]:
    yield from _serve(create_app(config, session_factory=sessions))


@pytest.fixture()
def hooks_port(config: Any, sessions: sessionmaker[Session]) -> Iterator[int]:
    yield from _serve(create_app(config, session_factory=sessions, public_only=True))


def _post(port: int, path: str, size: int) -> int:
    """Announce a body of `size` bytes, send only what the server reads before answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        sock.sendall(head.encode())
        if size <= 4096:
            sock.sendall(b"a=" + b"x" * (size - 2))
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status


def test_flask_refuses_a_large_login_post_with_a_russian_page(config: Any, sessions: Any) -> None:
    app = create_app(config, session_factory=sessions)
    response = app.test_client().post("/login", data={"login": "x" * (WEB_MAX_BODY + 1), "password": "p"})
    assert response.status_code == 413
    assert "Слишком большой запрос" in response.text


def test_flask_refuses_a_large_webhook_with_json(config: Any, sessions: Any) -> None:
    app = create_app(config, session_factory=sessions, public_only=True)
    body = json.dumps({"id": "1", "status": 1, "pad": "x" * HOOKS_MAX_BODY})
    response = app.test_client().post("/MangoOffice/UpdateStatus", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "error" in response.get_json()


def test_waitress_refuses_large_bodies_on_both_listeners(web_port: int, hooks_port: int) -> None:
    assert _post(web_port, "/login", 300 * 1024 * 1024) == 413  # refused on the announced size
    assert _post(hooks_port, "/smsru/callback", 2 * HOOKS_MAX_BODY) == 413
    assert _post(hooks_port, "/smsru/callback", 1000) != 413  # an ordinary callback reaches the app
