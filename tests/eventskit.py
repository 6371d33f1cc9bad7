"""ari_app's events listener for the browsers (the real AriApp code, its real call-log
process and database), on a free port in a thread of its own, without Asterisk; and a small
SSE client on aiohttp for the tests that open many streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import aiohttp
import uvloop

from ari_app.app import AriApp, Options
from clinic.config import Config

T = TypeVar("T")


class EventsListener:
    def __init__(self, config: Config, origins: tuple[str, ...] = (), keepalive: float = 15.0) -> None:
        self.loop = uvloop.new_event_loop()  # the loop `mis-telephony ari` runs on
        self.thread = threading.Thread(target=self.loop.run_forever, name="events", daemon=True)
        self.thread.start()
        options = Options(
            control_url="http://127.0.0.1:0",
            events_host="127.0.0.1",
            events_port=0,
            web_origins=origins or ("http://web.invalid",),
            events_keepalive=keepalive,
        )
        self.app: AriApp = self.run(self._make(config, options))
        self.run(self.app.start_events())

    @staticmethod
    async def _make(config: Config, options: Options) -> AriApp:
        return AriApp(config, options)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app.events_port}"

    def counts(self) -> tuple[int, int]:
        """(streams the gateway holds, subscriptions of the notifier), read on its loop."""

        async def read() -> tuple[int, int]:
            return self.app.gateway.count, self.app.notifier.count

        return self.run(read())

    def tasks(self) -> int:
        async def read() -> int:
            return len(asyncio.all_tasks())

        return self.run(read())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.app.stop_events(), timeout=10)
        with contextlib.suppress(Exception):
            self.run(self.app.ari.close(), timeout=10)
        self.app.store.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


async def next_event(resp: aiohttp.ClientResponse) -> tuple[str, Any]:
    """The next `event:`/`data:` pair of an SSE stream (comments and `retry:` skipped)."""
    event, data = "message", ""
    while True:
        raw = await resp.content.readline()
        if not raw:
            raise EOFError("the stream ended")
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            return event, json.loads(data)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll a condition with a deadline (the poll interval is not synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout} s")
        time.sleep(step)
