"""The ari_app process: the ARI events loop, call control and its loopback control API.

    mis-telephony ari            (launcher/ari_cli.py) runs `run(config)`: serve() on uvloop
                                 until SIGTERM.

`AriApp.start()` connects the events websocket (reconnecting forever, resyncing on every
connection), starts the control API on `config.pbx.control_url` and the browsers' events
listener (ari_app/events_gateway.py) on `config.events_host:events_port`. `run_in_thread()`
starts the same thing on its own event loop in a thread, for the tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import uvloop
from aiohttp import web

from ari_app.calls import queries
from ari_app.calls.notifier import Notifier
from ari_app.calls.stasis import EVENT_TYPES
from ari_app.calls.store import CallStore
from ari_app.client import AriClient, AriError
from ari_app.control import make_app
from ari_app.core.core import Timeouts
from ari_app.directory.service import Endpoints
from ari_app.events_gateway import EventsGateway
from ari_app.features import CallControl
from ari_app.presence.stasis import EVENT_TYPES as PRESENCE_EVENT_TYPES
from ari_app.robot import stasis as robot_stasis
from ari_app.robot.service import RobotSetup
from ari_app.robot.setup import robot_setup
from ari_app.takeover.ami import AmiRedirect
from clinic.config import Config

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Options:
    registrar_endpoint: str = "PJSIP/{sip_id}"
    number_endpoint: str = "PJSIP/{number}@trunk"
    ring_seconds: int = 30
    outside_seconds: int = 45
    control_url: str | None = None  # default: config.pbx.control_url
    events_host: str | None = None  # the browsers' events listener; default: config.events_host
    events_port: int | None = None  # default: config.events_port (0: a free port, tests)
    web_origins: tuple[str, ...] = ()  # default: config.allowed_origins
    events_keepalive: float = 15.0
    robot: RobotSetup | None = None  # default: built from the config (ari_app/robot/setup.py)
    robot_dialer: bool = True  # the own robot's dialer loop (inbound confirmation regardless)
    extra: dict[str, Any] = field(default_factory=dict)


class AriApp:
    def __init__(self, config: Config, options: Options | None = None) -> None:
        self.config = config
        self.options = options or Options()
        pbx = config.pbx
        self.ari = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, pbx.ari_app)
        self.store = CallStore(config.database_url)  # the call log, in a process of its own
        self.notifier = Notifier()
        opts = self.options
        self.service = CallControl(
            self.ari,
            self.store,
            self.notifier,
            endpoints=Endpoints(opts.registrar_endpoint, opts.number_endpoint),
            timeouts=Timeouts(opts.ring_seconds, opts.outside_seconds),
            redirect_to_stasis=AmiRedirect(pbx, self.ari),
            robot=opts.robot or robot_setup(config, opts.number_endpoint, opts.robot_dialer),
        )
        self.stasis = self.service.stasis
        self.gateway = EventsGateway(
            self.notifier,
            config.secret_key,
            self._authorize,
            self._hello,
            self.options.web_origins or config.allowed_origins,
            keepalive=self.options.events_keepalive,
        )
        self._events: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._events_runner: web.AppRunner | None = None
        self.port = 0
        self.events_port = 0

    async def _authorize(self, user_id: int, epoch: int) -> bool:
        """The events token's user is active, not locked, and still in that session."""
        return await self.store.read(queries.session_epoch, user_id) == epoch

    async def _hello(self, user_id: int) -> list[dict[str, Any]]:
        return await self.service.hello(user_id)

    async def start(self) -> None:
        self._events = asyncio.create_task(
            self.ari.run_events(
                self.service.handle, on_connect=self._on_connect, on_disconnect=self._on_disconnect
            ),
            name="ari-events",
        )
        app = make_app(self.service, self.notifier, self.ari, self.config.pbx.control_token)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        url = urlsplit(self.options.control_url or self.config.pbx.control_url)
        port = url.port if url.port is not None else 8090
        site = web.TCPSite(self._runner, url.hostname or "127.0.0.1", port, reuse_address=True)
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # type: ignore[union-attr]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("ari_app control API on http://%s:%s", url.hostname, self.port)
        if self.service.robot is not None:
            self.service.robot.start()
        await self.start_events()

    async def start_events(self) -> None:
        """The browsers' events listener. Handler cancellation: a tab closed ends its
        coroutine at once (not at the next keep-alive)."""
        runner = web.AppRunner(
            self.gateway.app(), access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await runner.setup()
        host = self.options.events_host or self.config.events_host
        port = self.options.events_port if self.options.events_port is not None else self.config.events_port
        if self.events_port:  # a restart takes the port it had
            port = self.events_port
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._events_runner = runner
        server = site._server
        if server is not None and server.sockets:  # type: ignore[union-attr]
            self.events_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("ari_app events for the browsers on http://%s:%s", host, self.events_port)

    async def stop_events(self) -> None:
        if self._events_runner is not None:
            await self._events_runner.cleanup()
            self._events_runner = None

    async def _on_connect(self) -> None:
        with contextlib.suppress(AriError):
            await self.ari.set_event_filter(EVENT_TYPES + PRESENCE_EVENT_TYPES + robot_stasis.EVENT_TYPES)
        await self.service.resync()
        if self.service.robot is not None:
            await self.service.robot.resync()
        await self.service.presence.connected()

    async def _on_disconnect(self) -> None:
        self.service.presence.disconnected()

    async def stop(self) -> None:
        if self.service.robot is not None:
            await self.service.robot.stop()
        await self.stop_events()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.ari.close()
        await self.service.presence.close()
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
        self.store.close()


async def serve(config: Config, options: Options | None = None) -> None:
    app = AriApp(config, options=options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()


def run(config: Config, options: Options | None = None) -> None:
    """`serve()` until SIGTERM, on uvloop: libuv's loop and transports cut ari_app's own CPU
    per call, which in a burst of calls is what the calls wait for (bench/calls.py)."""
    uvloop.run(serve(config, options))


class ThreadedApp:
    """An AriApp on its own event loop in a daemon thread (tests, benchmark)."""

    def __init__(self, config: Config, options: Options | None = None) -> None:
        self.loop = uvloop.new_event_loop()  # the same loop as `mis-telephony ari`
        self.thread = threading.Thread(target=self.loop.run_forever, name="ari-app", daemon=True)
        self.thread.start()
        self.app: AriApp = self.run(self._make(config, options))
        self.run(self.app.start())

    @staticmethod
    async def _make(config: Config, options: Options | None) -> AriApp:
        return AriApp(config, options)  # built inside the loop (asyncio.Event etc.)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app.port}"

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.app.events_port}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.app.stop(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()
