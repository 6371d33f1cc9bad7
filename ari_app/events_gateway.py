"""The browsers' live call events, served by ari_app itself on a listener of its own.

Every logged-in page keeps an EventSource open. Relayed through the web app, each of them
held one of waitress's threads (and a closed tab kept it until the next keep-alive), so a
few tabs stopped the UI. Here a stream is a coroutine: thousands cost a few KiB each.

    GET /events?token=...     server-sent events: hello, call, incoming, incoming_end, dtmf,
                              closed (the server ended the stream: the page must not reconnect
                              with the same token)

The page gets the token from the web app (`GET /phone/events-token`, session required): an
itsdangerous signature over {"uid", "epoch"} with the web's secret key, good for
TOKEN_MAX_AGE seconds to connect. The user must still be active, not locked, and his
session epoch unchanged (logout and lock move it on); that is checked again every
keep-alive period, however busy the stream, so an open stream ends with the session.
Forged, expired or stale: 401 JSON.

CORS: only the web app's origins get `Access-Control-Allow-Origin`; no credentials (the
token is in the URL, never logged: the listener has no access log).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ari_app.calls.notifier import Notifier, Subscriber
from clinic.events_token import TOKEN_MAX_AGE, read_token

log = logging.getLogger(__name__)

MAX_STREAMS_PER_USER = 8
TOO_MANY_TABS = (
    "Открыто слишком много вкладок: в этой звонки больше не показываются. "
    "Закройте лишние вкладки и обновите эту страницу"
)
SESSION_ENDED = "Сеанс работы завершён: войдите в систему заново"
UNAUTHORIZED = "Нет доступа к событиям телефонии: обновите страницу"
UNAVAILABLE = "Нет связи с АТС: журнал звонков временно недоступен"

Authorize = Callable[[int, int], Awaitable[bool]]  # (user id, epoch) -> still valid
Hello = Callable[[int], Awaitable[list[dict[str, Any]]]]  # the user's active calls


@dataclass(eq=False)
class Stream:
    user_id: int
    epoch: int
    sub: Subscriber
    closed: str = ""  # why the server ends this stream ("" while it lives)


class EventsGateway:
    def __init__(
        self,
        notifier: Notifier,
        secret_key: str,
        authorize: Authorize,
        hello: Hello,
        origins: Iterable[str],
        *,
        keepalive: float = 15.0,
        token_max_age: float = TOKEN_MAX_AGE,
        per_user: int = MAX_STREAMS_PER_USER,
    ) -> None:
        self.notifier = notifier
        self.secret_key = secret_key
        self.authorize = authorize
        self.hello = hello
        self.origins = {o.rstrip("/") for o in origins}
        self.keepalive = keepalive
        self.token_max_age = token_max_age
        self.per_user = per_user
        self.streams: dict[int, list[Stream]] = {}  # open streams per user, oldest first

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.streams.values())

    # ------------------------------------------------------------------------ HTTP

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024)  # GET only: no body to read
        app.router.add_get("/events", self.events)
        app.router.add_route("OPTIONS", "/events", self.options)
        return app

    def _cors(self, request: web.Request) -> dict[str, str]:
        headers = {"Cache-Control": "no-store", "Vary": "Origin"}
        origin = request.headers.get("Origin", "")
        if origin in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
        return headers

    def _refuse(self, request: web.Request, status: int, message: str) -> web.Response:
        return web.Response(
            text=json.dumps({"error": message}, ensure_ascii=False),
            status=status,
            content_type="application/json",
            headers=self._cors(request),
        )

    async def options(self, request: web.Request) -> web.Response:
        headers = self._cors(request)
        if "Access-Control-Allow-Origin" in headers:
            headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            headers["Access-Control-Max-Age"] = "600"
        return web.Response(status=204, headers=headers)

    async def events(self, request: web.Request) -> web.StreamResponse:
        who = read_token(self.secret_key, request.query.get("token", ""), self.token_max_age)
        valid = None if who is None else await self._valid(*who)
        if who is None or valid is False:
            return self._refuse(request, 401, UNAUTHORIZED)
        if valid is None:
            return self._refuse(request, 503, UNAVAILABLE)
        stream = self._open(*who)
        try:
            resp = web.StreamResponse(
                headers={
                    **self._cors(request),
                    "Content-Type": "text/event-stream",
                    "X-Accel-Buffering": "no",
                }
            )
            await resp.prepare(request)
            await resp.write(b"retry: 2000\n\n" + sse("hello", {"calls": await self.hello(stream.user_id)}))
            await self._pump(stream, resp)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the tab went away: handler cancellation brings us here at once
        finally:
            self._close(stream)
        return resp

    async def _valid(self, user_id: int, epoch: int) -> bool | None:
        """Whether the session behind a token is still on; None: the database cannot say."""
        try:
            return await self.authorize(user_id, epoch)
        except Exception as exc:  # the call log's process restarting: ask again later
            log.warning("events: session of user %s not checked: %s", user_id, exc)
            return None

    # ----------------------------------------------------------------------- streams

    def _open(self, user_id: int, epoch: int) -> Stream:
        stream = Stream(user_id, epoch, self.notifier.subscribe(user_id))
        mine = self.streams.setdefault(user_id, [])
        mine.append(stream)
        while len(mine) > self.per_user:  # the newest tab wins, the oldest is told why
            self._end(mine.pop(0), TOO_MANY_TABS)
        return stream

    def _end(self, stream: Stream, reason: str) -> None:
        """Tell the stream's own coroutine to say `reason` and stop: a wake-up in its queue
        (emptied first if a stuck tab filled it), no task of ours."""
        stream.closed = reason
        queue = stream.sub.queue
        while queue.full():
            queue.get_nowait()
        queue.put_nowait(WAKE)

    def _close(self, stream: Stream) -> None:
        self.notifier.unsubscribe(stream.sub)
        mine = self.streams.get(stream.user_id, [])
        with contextlib.suppress(ValueError):
            mine.remove(stream)
        if not mine:
            self.streams.pop(stream.user_id, None)

    async def _pump(self, stream: Stream, resp: web.StreamResponse) -> None:
        queue = stream.sub.queue
        loop = asyncio.get_running_loop()
        check_at = loop.time() + self.keepalive
        while not stream.closed:
            got: dict[str, Any] | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(check_at):  # not wait_for: no task per event
                    got = await queue.get()
            if loop.time() >= check_at:  # every keepalive period, a busy stream as a quiet one
                if await self._valid(stream.user_id, stream.epoch) is False:
                    self._end(stream, SESSION_ENDED)
                    break
                check_at = loop.time() + self.keepalive
                if got is None:  # quiet: tell the tab (and any proxy) the stream is alive
                    await resp.write(b": keepalive\n\n")
                    continue
            if got is None:
                continue
            # everything queued by now goes in one write
            chunks = []
            while got is not None:
                if got is not WAKE:
                    chunks.append(sse(got["event"], got["data"]))
                got = queue.get_nowait() if not queue.empty() else None
            if chunks and not stream.closed:
                await resp.write(b"".join(chunks))
        await resp.write(sse("closed", {"reason": stream.closed}))


WAKE: dict[str, Any] = {"event": "", "data": None}  # the marker `_end` queues


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
