"""Fixtures: the Mango emulator on a free 127.0.0.1 port, a client pointed at it, and a tiny
webhook receiver standing in for the clinic's :55055 listener.

The emulator and the client share one ManualClock: the client's rate limiter "sleeps" by
advancing it and the emulator measures its rate windows on it, so rate tests are exact and
never wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from clinic.mango import MangoClient, MangoSettings, ManualClock
from emulators.mango import EmulatorOptions, MangoEmulator, create_app, emulator_of

from .support import KEY, SALT, Received, RunningEmulator, ServerThread, WebhookReceiver


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def start_emulator(clock: ManualClock) -> Iterator[Callable[..., RunningEmulator]]:
    started: list[tuple[ServerThread, MangoEmulator]] = []

    def start(**overrides: Any) -> RunningEmulator:
        values: dict[str, Any] = {"api_key": KEY, "api_salt": SALT, "clock": clock}
        values.update(overrides)
        app = create_app(EmulatorOptions.from_mapping(values))
        srv = ServerThread(app)
        emu = emulator_of(app)
        started.append((srv, emu))
        return RunningEmulator(srv.url, emu, values["clock"])

    yield start
    for srv, emu in started:
        emu.shutdown()  # ends held requests first so the server can stop
        srv.stop()


@pytest.fixture()
def emu(start_emulator: Callable[..., RunningEmulator]) -> RunningEmulator:
    return start_emulator()


@pytest.fixture()
def make_client(clock: ManualClock) -> Iterator[Callable[..., MangoClient]]:
    clients: list[MangoClient] = []

    def make(running: RunningEmulator, **overrides: Any) -> MangoClient:
        settings: dict[str, Any] = {
            "api_key": KEY,
            "api_salt": SALT,
            "base_url": running.api_base,
            "read_timeout": 10.0,
        }
        on_exchange = overrides.pop("on_exchange", None)
        settings.update(overrides)
        client = MangoClient(MangoSettings(**settings), clock=clock, on_exchange=on_exchange)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture()
def client(emu: RunningEmulator, make_client: Callable[..., MangoClient]) -> MangoClient:
    return make_client(emu)


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    holder: dict[str, WebhookReceiver] = {}

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        hook = holder["hook"]
        hook.requests.put(Received(request.path, request.content_type or "", request.get_data()))
        return Response(b"OK" if hook.status < 300 else b"nope", status=hook.status)

    srv = ServerThread(app)
    holder["hook"] = WebhookReceiver(url=srv.url + "/MangoOffice/UpdateStatus")
    yield holder["hook"]
    srv.stop()
