"""A fake Asterisk ARI for the call-logic tests: the REST subset ari_app uses and the
`/ari/events` websocket (with REST over it, as Asterisk ≥ 22.4 offers), on a loop of its own.

It keeps a small model of channels, bridges and live recordings, so its REST answers are
consistent the way Asterisk's are (404 "Channel not found" for a channel that is gone, 409 for
a duplicate id: `ERRORS`, checked against the real Asterisk 22 by
tests/pbx/test_ari_recordings.py). The model and the recorded events are in
fake_ari_model.py, what REST requests do to them in fake_ari_rest.py; this module is the
server (HTTP and the events websocket) and what the tests call.

Its events are the real ones: every event it sends is a recorded Asterisk 22 event of the
same type and channel role (tests/fixtures/ari/*.json, recorded by that PBX test) with the
ids, names, numbers, state and time of this channel put in. The order it sends them in for a
channel (StasisStart when a phone answers; StasisEnd then ChannelDestroyed when it hangs up;
a bare ChannelDestroyed for a channel that never answered) is checked against the
recordings by tests/ari_app/test_fake_ari.py.

Nothing happens by itself unless asked: an originated channel rings until the test answers
it (`answer`), or it is answered at once when its endpoint is in `auto_answer`. Tests make
races by acting at a chosen moment: `before(op, hook)` runs a hook when ari_app's request
`op` arrives, before it is answered (a hang-up while ari_app is half-way through a command).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from .fake_ari_model import ERRORS, ROUTES, FakeBridge, FakeChannel, Hook, Json, Reply, Request, Templates
from .fake_ari_rest import AriModel

__all__ = ["ERRORS", "ROUTES", "FakeAri", "Reply", "Request", "Templates"]

T = TypeVar("T")


class FakeAri(AriModel):
    """Start with `FakeAri().start()`; `url` is the ARI base URL (…/ari) for the config."""

    user = "mis"
    password = "fake-ari-secret"

    def __init__(self, templates: Templates | None = None, *, rest_over_ws: bool = True) -> None:
        self.templates = templates or Templates()
        # a version before 22.4 keeps ari_app's REST on HTTP
        recorded = self.templates.asterisk.split()[-1] if self.templates.asterisk else ""
        self.version = recorded if rest_over_ws and recorded else "22.0.0"
        self.channels: dict[str, FakeChannel] = {}
        self._gone: dict[str, FakeChannel] = {}  # hung-up channels: their last snapshot
        self._app = "clinic"
        self.bridges: dict[str, FakeBridge] = {}
        self.recordings: dict[str, Json] = {}
        self.stored: dict[str, bytes] = {}
        self.endpoints: dict[str, str] = {}  # "PJSIP/reg101" -> online | offline
        self.auto_answer: set[str] = set()  # endpoints whose phones answer at once
        # endpoint -> cause: an originate to it fails at once, its ChannelDestroyed sent
        # before the originate's own answer
        self.fail_originate: dict[str, int] = {}
        self.requests: list[Request] = []
        self.sent: list[Json] = []  # every event sent to ari_app, in order
        self.filter: set[str] | None = None
        self.accepting = True  # False: new websocket connections are refused (Asterisk away)
        self.connections = 0  # websocket connections accepted so far
        self._hooks: dict[str, list[Hook]] = {}
        self._sockets: dict[web.WebSocketResponse, asyncio.Queue[str]] = {}
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-ari", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- life -------------------------------------------------------------------------

    def start(self) -> FakeAri:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            for ws in list(self._sockets):
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):
            self.run(_stop(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coro` on the fake's loop (from the test's thread) and return its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def wrapped() -> T:
            return fn()

        return self.run(wrapped(), timeout)

    # -- what the tests look at -----------------------------------------------------------

    def wait(self, pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Wait until `pred()` (read under the fake's lock) holds; the fake's state changes
        notify."""
        with self._cond:
            if not self._cond.wait_for(pred, timeout):
                ops = [(r.op, r.params.get("channelId") or r.params.get("bridgeId")) for r in self.requests]
                raise TimeoutError(f"fake ARI: {what or 'condition'} not met in {timeout} s; requests: {ops}")

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_request(self, op: str, timeout: float = 10.0, since: int = 0, **match: str) -> Request:
        found: list[Request] = []

        def seen() -> bool:
            for r in self.requests[since:]:
                if r.op == op and r.status and all(str(r.params.get(k)) == v for k, v in match.items()):
                    found.append(r)
                    return True
            return False

        self.wait(seen, timeout, f"request {op} {match}")
        return found[0]

    def ops(self, since: int = 0) -> list[str]:
        with self._cond:
            return [r.op for r in self.requests[since:]]

    def mark(self) -> int:
        with self._cond:
            return len(self.requests)

    def live_channels(self) -> list[str]:
        return self.call(lambda: sorted(self.channels))

    def live_bridges(self) -> list[str]:
        return self.call(lambda: sorted(self.bridges))

    def channel_of(self, role: str, uid: str | None = None) -> str:
        """The id of the live channel of this role (of this call)."""

        def find() -> str:
            for ch in self.channels.values():
                if ch.role == role and (uid is None or ch.id.startswith(uid) or uid in ch.id):
                    return ch.id
            raise KeyError(f"no live {role} channel{' of ' + uid if uid else ''}: {sorted(self.channels)}")

        return self.call(find)

    def wait_channel(self, role: str, uid: str | None = None, timeout: float = 10.0) -> str:
        def exists() -> bool:
            return any(
                ch.role == role and (uid is None or uid in ch.id) for ch in list(self.channels.values())
            )

        self.wait(exists, timeout, f"a {role} channel")
        return self.channel_of(role, uid)

    def before(self, op: str, hook: Hook, *, once: bool = True) -> None:
        """Run `hook(request)` (on the fake's loop) when ari_app's next request `op` arrives,
        before the fake answers it. A hook may change the model, send events, or raise Reply."""
        if once:
            fired = False
            original = hook

            def hook_once(req: Request) -> Awaitable[None] | None:
                nonlocal fired
                if fired:
                    return None
                fired = True
                self._hooks[op].remove(hook_once)
                return original(req)

            self._hooks.setdefault(op, []).append(hook_once)
        else:
            self._hooks.setdefault(op, []).append(hook)

    # -- the outside world (phones, the telephone network) --------------------------------

    def answer(self, channel_id: str) -> None:
        """The phone of an originated channel answers: the channel enters Stasis."""
        self.call(lambda: self._answer(channel_id))

    def far_hangup(self, channel_id: str, cause: int = 16) -> None:
        """The party of this channel hangs up (or its call fails with `cause` while ringing)."""
        self.call(lambda: self._destroy(channel_id, cause))

    def incoming(self, did: str, number: str, name: str = "", patient_id: int | None = None) -> str:
        """A call from the telephone network to the clinic's number `did` enters Stasis, as
        the dialplan sends it (`Stasis(clinic,inbound,<DID>)`); returns its channel id."""
        return self.call(lambda: self._incoming(did, number, name, patient_id))

    def standby(self, endpoint: str, *, earlier_app: bool = False) -> str:
        """A browser softphone (`endpoint`, "PJSIP/reg101-web") opens its standby line: its call
        to the dialplan's `mis-standby` enters Stasis with args ["standby"], unanswered; returns
        its channel id. `earlier_app`: a line an earlier ari_app answered, which this one never
        heard of (no event is sent)."""
        return self.call(lambda: self._standby(endpoint, earlier_app))

    def send(self, event: Json) -> None:
        """Send a hand-made (or hand-changed recorded) event to ari_app."""
        self.call(lambda: self._emit(event))

    def event_for(self, kind: str, channel_id: str, **fields: Any) -> Json:
        """The recorded event `kind` for this channel as it is now (it may be gone)."""
        return self.call(lambda: self._event(kind, self._snapshot_of(channel_id), **fields))

    def drop(self, *, refuse: bool = False) -> None:
        """Close the events websocket (an Asterisk restart, a network cut). With `refuse`,
        reconnections are refused until `accept()`."""

        async def _drop() -> None:
            self.accepting = not refuse
            for ws in list(self._sockets):
                await ws.close()

        self.run(_drop())

    def clear(self) -> None:
        """An empty world for the next test (on the fake's loop): no channels, bridges,
        recordings, hooks, policies or history."""
        for kept in (self.channels, self._gone, self.bridges, self.recordings, self._hooks,
                     self.auto_answer, self.fail_originate, self.sent, self.requests):  # fmt: skip
            kept.clear()
        self._changed()

    def accept(self) -> None:
        self.call(lambda: setattr(self, "accepting", True))

    # -- the same, for hooks (they run on the fake's loop) ------------------------------

    def answer_now(self, channel_id: str) -> None:
        self._answer(channel_id)

    def hang_up_now(self, channel_id: str, cause: int = 16) -> None:
        self._destroy(channel_id, cause)

    def bridge_now(self, bridge_id: str) -> None:
        """A bridge made by someone else (another process, a run before a restart)."""
        self._op_bridge_create({"bridgeId": bridge_id, "type": "mixing"}, {})

    def incoming_now(self, did: str, number: str, name: str = "", patient_id: int | None = None) -> str:
        return self._incoming(did, number, name, patient_id)

    def standby_now(self, endpoint: str) -> str:
        return self._standby(endpoint, False)

    def _emit(self, event: Json) -> None:
        with self._cond:
            self.sent.append(event)
            self._cond.notify_all()
        if self.filter is not None and event.get("type") not in self.filter:
            return
        text = json.dumps(event)
        for outbox in list(self._sockets.values()):
            outbox.put_nowait(text)

    # -- transports -------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def _http(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        body = None
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                body = await request.json()
        status, answer = await self.rest(request.method, "/" + request.match_info["tail"],
                                         dict(request.query), body)  # fmt: skip
        if isinstance(answer, bytes):
            return web.Response(body=answer, status=status, content_type="audio/wav")
        if answer is None:
            return web.Response(status=status)
        return web.json_response(answer, status=status)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        if not self.accepting:
            return web.json_response({"message": "Service Unavailable"}, status=503)
        self._app = request.query.get("app", "clinic")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        outbox: asyncio.Queue[str] = asyncio.Queue()
        self._sockets[ws] = outbox
        writer = self.loop.create_task(_writer(ws, outbox))  # one writer: events keep their order
        self.connections += 1
        self._changed()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("type") == "RESTRequest":
                    self.loop.create_task(self._ws_rest(outbox, data))
        finally:
            self._sockets.pop(ws, None)
            writer.cancel()
            self._changed()
        return ws

    async def _ws_rest(self, outbox: asyncio.Queue[str], data: Json) -> None:
        query = {q["name"]: q["value"] for q in data.get("query_strings") or ()}
        uri = str(data.get("uri", ""))
        path, _, qs = uri.partition("?")
        query.update(dict(parse_qsl(qs)))
        body = json.loads(data["message_body"]) if data.get("message_body") else None
        status, answer = await self.rest(str(data.get("method")), "/" + path.lstrip("/"), query, body)
        reply = {
            "type": "RESTResponse",
            "transaction_id": data.get("transaction_id"),
            "request_id": data.get("request_id"),
            "status_code": status,
            "reason_phrase": "",
            "uri": uri,
            "content_type": "application/json" if answer is not None else "",
            "message_body": json.dumps(answer) if answer is not None else "",
        }
        outbox.put_nowait(json.dumps(reply))


async def _writer(ws: web.WebSocketResponse, outbox: asyncio.Queue[str]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while True:
            await ws.send_str(await outbox.get())
