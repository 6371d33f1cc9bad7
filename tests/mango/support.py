"""Shared pieces of the Mango tests: credentials, a WSGI server on a thread, handles."""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from clinic.mango import MangoClient, MangoSettings, ManualClock
from emulators.mango import EmulatorOptions, MangoEmulator

KEY = "test-vpbx-key-0001"
SALT = "test-vpbx-salt-s3cr3t"
CAMPAIGN = 56919


class ServerThread:
    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class RunningEmulator:
    url: str
    emulator: MangoEmulator
    clock: ManualClock

    @property
    def api_base(self) -> str:
        return self.url + "/vpbx/"

    @property
    def options(self) -> EmulatorOptions:
        return self.emulator.options


@dataclass
class Received:
    path: str
    content_type: str
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)
    status: int = 204  # what the clinic's hook answers; the manual's log shows 204 OK

    def next(self, timeout: float = 10.0) -> Received:
        return self.requests.get(timeout=timeout)


def signed(payload: Any, key: str = KEY, salt: str = SALT) -> dict[str, str]:
    """A request form built by hand, independent of both the client and the emulator."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256((key + text + salt).encode()).hexdigest()
    return {"vpbx_api_key": key, "sign": digest, "json": text}


def post_raw(running: RunningEmulator, path: str, form: dict[str, str]) -> requests.Response:
    return requests.post(running.api_base + path, data=form, timeout=10)


def admin(running: RunningEmulator, path: str, body: Any = None, method: str = "POST") -> requests.Response:
    return requests.request(method, running.url + "/_emulator/" + path, json=body, timeout=10)


def client_answering(
    *responses: httpx.Response, clock: ManualClock | None = None, **settings: Any
) -> tuple[MangoClient, list[httpx.Request]]:
    """A client whose transport replays `responses` in order (the last one repeats), and the
    list of requests it sends."""
    pending = list(responses)
    sent: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return pending.pop(0) if len(pending) > 1 else pending[0]

    values: dict[str, Any] = {"api_key": KEY, "api_salt": SALT, "base_url": "http://mango.invalid/vpbx/"}
    values["max_retries"] = 0
    values.update(settings)
    transport = httpx.MockTransport(reply)
    return MangoClient(MangoSettings(**values), clock=clock or ManualClock(), transport=transport), sent
