"""Test helpers: servers in background threads, a scriptable callback receiver, and a
handle on a running sms.ru emulator."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, make_server

from clinic.smsru import RetryPolicy, SmsRuClient
from emulators.smsru import Emulator

API_ID = "5A1B2C3D-7777-4E5F-9A8B-0123456789AB"
WAIT = 10.0  # upper bound for waiting on an event; tests normally finish far sooner


class ServerThread:
    """A werkzeug server on a free 127.0.0.1 port, serving in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        # A short poll interval keeps shutdown() (which waits for the loop to notice) quick.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(WAIT)
        self.server.server_close()


@dataclass
class Received:
    content_type: str
    form: dict[str, str]
    reply: str
    status: int


@dataclass
class Receiver:
    """A callback handler that answers from a script (then `default`) and records each POST."""

    default: str = "100"
    script: deque[tuple[int, str]] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    server: ServerThread | None = None

    def answer(self, *replies: str | tuple[int, str]) -> None:
        for reply in replies:
            self.script.append(reply if isinstance(reply, tuple) else (200, reply))

    def app(self) -> Flask:
        app = Flask("smsru-test-receiver")

        @app.post("/cb")
        def callback() -> Response:
            with self.changed:
                status, reply = self.script.popleft() if self.script else (200, self.default)
                self.received.append(
                    Received(request.content_type or "", request.form.to_dict(), reply, status)
                )
                self.changed.notify_all()
            return Response(reply, status=status, content_type="text/plain")

        return app

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/cb"

    def wait_for(self, predicate: Any, timeout: float = WAIT) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.received), timeout)

    def records(self) -> list[str]:
        """Every data[N] record received, in order, across all POSTs."""
        out = []
        for item in self.received:
            keys = sorted((k for k in item.form if k.startswith("data[")), key=lambda k: int(k[5:-1]))
            out.extend(item.form[k] for k in keys)
        return out


@dataclass
class Sms:
    """A running emulator: its URL, the Emulator object and admin helpers."""

    server: ServerThread
    emulator: Emulator
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **kwargs: Any) -> SmsRuClient:
        kwargs.setdefault("base_url", self.url)
        kwargs.setdefault("retry", RetryPolicy(attempts=3, backoff=0.0))
        kwargs.setdefault("connect_timeout", 2.0)
        kwargs.setdefault("read_timeout", 5.0)
        kwargs.setdefault("sleep", lambda seconds: None)
        return SmsRuClient(kwargs.pop("api_id", API_ID), **kwargs)

    def advance(self, seconds: float = 0.0) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/_emulator/advance", json={"seconds": seconds})
        response.raise_for_status()
        return response.json()

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/_emulator/config", json=changes)
        response.raise_for_status()
        return response.json()

    def faults(self, *rules: dict[str, Any]) -> None:
        self.configure(faults=list(rules))

    def canned(self, path: str, body: str, count: int = 1) -> None:
        """The next `count` replies to `path` are `body`, verbatim (quirks the emulator
        does not produce by itself)."""
        self.faults({"kind": "raw", "path": path, "body": body, "count": count})

    def messages(self, **filters: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.url}/_emulator/messages", params=filters)
        response.raise_for_status()
        return response.json()["messages"]

    def callbacks(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/_emulator/callbacks").json()

    def raw(self, method: str, data: dict[str, str] | Iterable[tuple[str, str]] | None = None,
            **kwargs: Any) -> httpx.Response:  # fmt: skip
        """POST straight to an API path, bypassing the client."""
        return self.http.post(f"{self.url}/{method}", data=data, **kwargs)

    def call(self, method: str, **fields: str) -> dict[str, Any]:
        """POST with api_id and json=1, return the decoded reply."""
        response = self.raw(method, {"api_id": API_ID, "json": "1", **fields})
        assert response.status_code == 200
        return response.json()
