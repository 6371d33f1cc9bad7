"""The events half of the ARI client: one websocket to `/ari/events`, reconnected with
exponential backoff; `on_connect` runs after every (re)connection, which is where the
application resyncs its state. REST answers that ride the same socket are handed to the
REST half (ari/rest.py). The handler must not await a REST answer itself (the loop that
would read it is the one waiting): schedule work instead, as `CallsStasis.handle` does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from ari_app.ari.rest import AriRest
from ari_app.events import Event, parse_event

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]


class AriClient(AriRest):
    """REST (ari/rest.py) plus the events websocket."""

    def events_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/events?app={quote(self.app)}&subscribeAll=false"

    async def run_events(
        self,
        handler: EventHandler,
        *,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        """Read events until `close()`; reconnect with exponential backoff on any drop."""
        delay = backoff[0]
        token = base64.b64encode(f"{self.user}:{self._password}".encode()).decode()
        while not self._closing:
            try:
                headers = {"Authorization": f"Basic {token}"}
                async with ws_connect(
                    self.events_url(),
                    additional_headers=headers,
                    open_timeout=5,
                    ping_interval=5,
                    ping_timeout=20,
                    max_size=2**22,
                ) as ws:
                    ws.transport = _CoalescingTransport(ws.transport, asyncio.get_running_loop())
                    self._ws = ws
                    delay = backoff[0]
                    log.info("ARI events connected (%s)", self.app)
                    self.connected.set()
                    if on_connect is not None:
                        await on_connect()  # over HTTP: nothing reads the socket yet
                    await self._enable_ws_rest()
                    self.rest_ready.set()
                    async for message in ws:
                        try:
                            data = json.loads(message)
                            if isinstance(data, dict) and data.get("type") == "RESTResponse":
                                self._resolve(data)
                                continue
                            event = parse_event(data)
                        except (ValueError, TypeError):
                            log.warning("ARI: undecodable event %r", message[:200])
                            continue
                        try:
                            await handler(event)
                        except Exception:  # one bad event must not kill the loop
                            log.exception("ARI: handler failed on %s", event.type)
            except (TimeoutError, OSError, InvalidHandshake, WebSocketException) as exc:
                if not self._closing:
                    log.warning("ARI events: %r; reconnecting in %.1f s", exc, delay)
            finally:
                self._ws = None
                self.rest_ready.clear()
                self._fail_pending("events socket closed")
                if self.connected.is_set():
                    self.connected.clear()
                    self.reconnects += 1
                    if on_disconnect is not None and not self._closing:
                        await on_disconnect()
            if self._closing:
                break
            await asyncio.sleep(delay)  # backoff between attempts, not synchronisation
            delay = min(delay * 2, backoff[1])


class _CoalescingTransport:
    """The events websocket's transport, with the writes of one loop iteration sent as one.
    In a burst of calls many channels' handlers each send an ARI request in the same
    iteration; a socket write apiece (a syscall and a loopback transmit each) was a quarter
    of ari_app's time (profiled under bench/calls.py). Order is kept; close flushes first."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)  # after every callback of this iteration
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def wait_connected(client: AriClient, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(client.connected.wait(), max(0.0, deadline - time.monotonic()))
    return client.connected.is_set()
