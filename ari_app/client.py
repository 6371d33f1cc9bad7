"""A thin async ARI client: events over one websocket, REST over that same websocket once
it is up (Asterisk ≥ 22.4: `RESTRequest`/`RESTResponse`), over aiohttp's HTTP client before
that, against an older Asterisk, and for binary answers.

Every REST call goes through `AriClient.call(op, ...)` with an operation named in `OPS`:
(HTTP method, path template, the parameter names we may send). A test checks that table
against the live `/ari/api-docs` of the running Asterisk, and `recorder` (when set) sees
each request actually sent, so the test can check those too.

Why the websocket: Asterisk's HTTP server takes a thread per connection and a burst of
requests opens connections at once (200 concurrent `GET /asterisk/info`: 1.85 s over HTTP,
7 ms over the websocket on 22.10), and each HTTP request costs our event loop several times
what one websocket message does.

Errors are mapped by HTTP status (the same `status_code` in a `RESTResponse`) to
`AriError` subclasses; a transport failure is `AriUnavailable`. The events loop
(`run_events`) reconnects with exponential backoff and calls `on_connect` after every
(re)connection, which is where the application resyncs its state (`GET /channels`,
`GET /bridges`) — after an Asterisk restart its calls are gone. The handler must not await
a REST answer itself (the loop that would read it is the one waiting): schedule work
instead, as `CallsStasis.handle` does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from ari_app.events import Bridge, Channel, Event, LiveRecording, parse_event

log = logging.getLogger(__name__)

Json = dict[str, Any]


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # relative to /ari, with {placeholders}
    params: frozenset[str] = frozenset()  # query/body parameters we may send


def _op(method: str, path: str, *params: str) -> Op:
    return Op(method, path, frozenset(params))


OPS: dict[str, Op] = {
    "asterisk_info": _op("GET", "/asterisk/info"),
    "channels_list": _op("GET", "/channels"),
    "channel_get": _op("GET", "/channels/{channelId}"),
    "originate": _op(
        "POST",
        "/channels",
        "endpoint",
        "app",
        "appArgs",
        "callerId",
        "timeout",
        "channelId",
        "otherChannelId",
        "originator",
        "variables",
        "formats",
    ),
    "channel_create": _op(
        "POST",
        "/channels/create",
        "endpoint",
        "app",
        "appArgs",
        "channelId",
        "otherChannelId",
        "originator",
        "variables",
        "formats",
    ),
    "channel_dial": _op("POST", "/channels/{channelId}/dial", "caller", "timeout"),
    "hangup": _op("DELETE", "/channels/{channelId}", "reason", "reason_code"),
    "answer": _op("POST", "/channels/{channelId}/answer"),
    "ring": _op("POST", "/channels/{channelId}/ring"),
    "ring_stop": _op("DELETE", "/channels/{channelId}/ring"),
    "hold": _op("POST", "/channels/{channelId}/hold"),
    "unhold": _op("DELETE", "/channels/{channelId}/hold"),
    "moh_start": _op("POST", "/channels/{channelId}/moh", "mohClass"),
    "moh_stop": _op("DELETE", "/channels/{channelId}/moh"),
    "mute": _op("POST", "/channels/{channelId}/mute", "direction"),
    "unmute": _op("DELETE", "/channels/{channelId}/mute", "direction"),
    "send_dtmf": _op("POST", "/channels/{channelId}/dtmf", "dtmf", "before", "between", "duration", "after"),
    "continue": _op("POST", "/channels/{channelId}/continue", "context", "extension", "priority", "label"),
    "move": _op("POST", "/channels/{channelId}/move", "app", "appArgs"),
    "redirect": _op("POST", "/channels/{channelId}/redirect", "endpoint"),
    "get_var": _op("GET", "/channels/{channelId}/variable", "variable"),
    "set_var": _op("POST", "/channels/{channelId}/variable", "variable", "value"),
    "bridges_list": _op("GET", "/bridges"),
    "bridge_get": _op("GET", "/bridges/{bridgeId}"),
    "bridge_create": _op("POST", "/bridges/{bridgeId}", "type", "name"),
    "bridge_destroy": _op("DELETE", "/bridges/{bridgeId}"),
    "bridge_add": _op(
        "POST",
        "/bridges/{bridgeId}/addChannel",
        "channel",
        "role",
        "absorbDTMF",
        "mute",
        "inhibitConnectedLineUpdates",
    ),
    "bridge_remove": _op("POST", "/bridges/{bridgeId}/removeChannel", "channel"),
    "bridge_moh_start": _op("POST", "/bridges/{bridgeId}/moh", "mohClass"),
    "bridge_moh_stop": _op("DELETE", "/bridges/{bridgeId}/moh"),
    "bridge_record": _op(
        "POST",
        "/bridges/{bridgeId}/record",
        "name",
        "format",
        "maxDurationSeconds",
        "maxSilenceSeconds",
        "ifExists",
        "beep",
        "terminateOn",
    ),
    "recording_stop": _op("POST", "/recordings/live/{recordingName}/stop"),
    "recording_get": _op("GET", "/recordings/live/{recordingName}"),
    "stored_get": _op("GET", "/recordings/stored/{recordingName}"),
    "stored_file": _op("GET", "/recordings/stored/{recordingName}/file"),
    "stored_delete": _op("DELETE", "/recordings/stored/{recordingName}"),
    "endpoint_get": _op("GET", "/endpoints/{tech}/{resource}"),
    "app_get": _op("GET", "/applications/{applicationName}"),
    "app_event_filter": _op("PUT", "/applications/{applicationName}/eventFilter", "filter"),
}


class AriError(Exception):
    """An ARI request failed. `status` is the HTTP status (0 when Asterisk was unreachable)."""

    status = 0

    def __init__(self, message: str, *, status: int | None = None, op: str = "", path: str = "") -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.op = op
        self.path = path


class AriUnavailable(AriError):
    """Asterisk did not answer (connection refused, timeout)."""


class AriBadRequest(AriError):
    status = 400


class AriNotFound(AriError):
    status = 404


class AriConflict(AriError):
    """409: e.g. "Channel not in Stasis application", a duplicate id, a bridged channel."""

    status = 409


class AriInvalidState(AriError):
    status = 412


class AriUnprocessable(AriError):
    status = 422


class AriServerError(AriError):
    status = 500


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    404: AriNotFound,
    409: AriConflict,
    412: AriInvalidState,
    422: AriUnprocessable,
}


def error_for(status: int, message: str, *, op: str = "", path: str = "") -> AriError:
    cls = _BY_STATUS.get(status) or (AriServerError if status >= 500 else AriError)
    return cls(message, status=status, op=op, path=path)


Recorder = Callable[[str, str, dict[str, Any]], None]  # (op name, method, params sent)

# Over HTTP even when REST rides the events websocket: binary answers (not carried in a
# RESTResponse), and the bridge moves. Asterisk answers one websocket's requests in turn,
# and a bridge move waits for the channel's own thread to carry it out; over HTTP (a thread
# per connection) it holds up nothing else (bench/calls.py: answered → bridged 38 → 13 ms
# at 50 concurrent calls).
HTTP_ONLY = frozenset({"stored_file", "bridge_add", "bridge_remove"})


def supports_rest_over_ws(version: str) -> bool:
    """REST over the events websocket came in Asterisk 20.14, 21.9 and 22.4."""
    try:
        major, minor = (int(part) for part in version.split("+")[0].split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return major >= 23 or (major, minor) >= {20: (20, 14), 21: (21, 9), 22: (22, 4)}.get(major, (99, 0))


EventHandler = Callable[[Event], Awaitable[None]]


class AriClient:
    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        timeout: float = 5.0,
        recorder: Recorder | None = None,
        rest_over_ws: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.rest_over_ws = rest_over_ws  # use it when the running Asterisk has it
        self.user = user
        self._password = password
        self.app = app
        self.recorder = recorder
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None  # created in the running loop, on first use
        self.connected = asyncio.Event()
        self._closing = False
        self._ws: Any = None
        self._ws_rest = False  # REST requests go over the websocket now
        self.rest_ready = asyncio.Event()  # set once the REST transport is chosen for a connection
        self._pending: dict[str, asyncio.Future[Json]] = {}
        # a counter, not uuid4 per request: unique per client all the same, without a syscall
        self._request_prefix = uuid.uuid4().hex[:8] + "-"
        self._request_seq = itertools.count(1)
        self.reconnects = 0

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # aiohttp's pool, not httpx's: under 50 concurrent calls httpcore spent about half
            # of ari_app's CPU re-checking every pooled connection on each request (profiled)
            self._http = aiohttp.ClientSession(
                headers={
                    "Authorization": "Basic "
                    + base64.b64encode(f"{self.user}:{self._password}".encode()).decode()
                },
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=128, keepalive_timeout=10),
                trust_env=False,
            )
        return self._http

    # -- REST ---------------------------------------------------------------------------

    async def call(
        self, name: str, /, *, body: Json | None = None, raw_body: Json | None = None, **params: Any
    ) -> Any:
        """Send operation `name`; path placeholders and parameters come as keyword arguments.
        Returns the decoded JSON (or None for 204)."""
        op = OPS[name]
        path = op.path
        query: dict[str, Any] = {}
        for key, value in params.items():
            if "{" + key + "}" in path:
                path = path.replace("{" + key + "}", quote(str(value), safe=""))
            elif value is not None:
                if key not in op.params:
                    raise ValueError(f"ARI {name}: parameter {key!r} is not declared in OPS")
                query[key] = _query_value(value)
        if "{" in path:
            raise ValueError(f"ARI {name}: missing path parameter in {path}")
        payload = raw_body if raw_body is not None else ({"variables": body} if body else None)
        if self.recorder is not None:
            sent = {"variables": body} if body else {}
            if raw_body is not None:
                sent = {"filter": raw_body}
            self.recorder(name, op.method, {**query, **sent})
        if self._ws_rest and name not in HTTP_ONLY:
            status, ctype, content = await self._ws_request(name, op.method, path, query, payload)
        else:
            try:
                async with self._session().request(
                    op.method, self.base_url + path, params=query, json=payload
                ) as resp:
                    status, ctype, content = resp.status, resp.content_type, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise AriUnavailable(f"ARI {op.method} {path}: {exc!r}", op=name, path=path) from exc
        if status >= 400:
            try:
                message = json.loads(content).get("message") or content.decode(errors="replace")
            except (ValueError, AttributeError):
                message = content.decode(errors="replace")
            raise error_for(status, f"ARI {op.method} {path}: {status} {message}", op=name, path=path)
        if status == 204 or not content:
            return None
        if ctype == "application/json":
            return json.loads(content)
        return content

    async def _ws_request(
        self, name: str, method: str, path: str, query: dict[str, str], payload: Json | None
    ) -> tuple[int, str, bytes]:
        """One REST request as a `RESTRequest` message on the events websocket; the reader
        loop resolves it when the matching `RESTResponse` arrives."""
        request_id = f"{self._request_prefix}{next(self._request_seq)}"
        message: Json = {
            "type": "RESTRequest",
            "transaction_id": request_id,
            "request_id": request_id,
            "method": method,
            "uri": path.lstrip("/"),
        }
        if query:
            message["query_strings"] = [{"name": k, "value": v} for k, v in query.items()]
        if payload is not None:
            message["content_type"] = "application/json"
            message["message_body"] = json.dumps(payload)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Json] = loop.create_future()
        self._pending[request_id] = future
        # a timer on the future itself: wait_for would add a waiter future and callbacks to
        # every request
        timer = loop.call_later(self._timeout, _time_out, future)
        try:
            ws = self._ws
            if ws is None:
                raise AriUnavailable(f"ARI {method} {path}: events socket closed", op=name, path=path)
            await ws.send(json.dumps(message))
            reply = await future
        except (TimeoutError, WebSocketException, OSError) as exc:
            raise AriUnavailable(f"ARI {method} {path} (websocket): {exc!r}", op=name, path=path) from exc
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
        body = reply.get("message_body") or ""
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return int(reply.get("status_code") or 0), str(reply.get("content_type") or ""), content

    @property
    def rest_transport(self) -> str:
        return "websocket" if self._ws_rest else "http"

    def _resolve(self, reply: Json) -> None:
        future = self._pending.get(str(reply.get("request_id")))
        if future is not None and not future.done():
            future.set_result(reply)

    def _fail_pending(self, why: str) -> None:
        self._ws_rest = False
        for request_id, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(AriUnavailable(f"ARI request {request_id}: {why}"))

    async def _enable_ws_rest(self) -> None:
        """Carry REST over the websocket from now on, if this Asterisk can (asked over HTTP,
        since the reader loop that would answer a websocket request is not running yet)."""
        if not self.rest_over_ws:
            return
        try:
            version = str((await self.info()).get("system", {}).get("version", ""))
        except AriError as exc:
            log.warning("ARI: version unknown (%s); REST stays on HTTP", exc)
            return
        self._ws_rest = supports_rest_over_ws(version)
        way = "the events websocket" if self._ws_rest else "HTTP"
        log.info("ARI REST over %s (Asterisk %s)", way, version)

    # typed helpers for the calls the application makes -----------------------------------

    async def info(self) -> Json:
        return await self.call("asterisk_info")  # type: ignore[no-any-return]

    async def channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.call("channels_list")]

    async def channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.call("channel_get", channelId=channel_id))

    async def bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.call("bridges_list")]

    async def bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self.call("bridge_get", bridgeId=bridge_id))

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: str,
        caller_id: str = "",
        timeout: int = 30,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        try:
            data = await self.call(
                "originate",
                body=variables,
                endpoint=endpoint,
                app=self.app,
                appArgs=app_args,
                channelId=channel_id,
                # our id for a Local channel's other half too: left to Asterisk, concurrent
                # originates now and then got "409 Channel with given unique ID already exists"
                otherChannelId=f"{channel_id}-2",
                callerId=caller_id or None,
                timeout=timeout,
                originator=originator,
            )
        except AriConflict as exc:
            # our ids are unique, so "already exists" means an earlier attempt of this very
            # request got through (a connection dropped before its answer): it is ours
            if "already exists" not in str(exc):
                raise
            return await self.channel(channel_id)
        return Channel.from_json(data)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.call("hangup", channelId=channel_id, reason=reason)

    async def create_bridge(self, bridge_id: str, name: str = "") -> Bridge:
        # dtmf_events keeps media in Asterisk so ChannelDtmfReceived reaches us (pbx-lab gotcha 1)
        data = await self.call(
            "bridge_create", bridgeId=bridge_id, type="mixing,dtmf_events", name=name or None
        )
        return Bridge.from_json(data)

    async def add_to_bridge(self, bridge_id: str, *channel_ids: str) -> None:
        await self.call("bridge_add", bridgeId=bridge_id, channel=",".join(channel_ids))

    async def remove_from_bridge(self, bridge_id: str, *channel_ids: str) -> None:
        await self.call("bridge_remove", bridgeId=bridge_id, channel=",".join(channel_ids))

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.call("bridge_destroy", bridgeId=bridge_id)

    async def record_bridge(self, bridge_id: str, name: str) -> LiveRecording:
        data = await self.call(
            "bridge_record",
            bridgeId=bridge_id,
            name=name,
            format="wav",
            ifExists="fail",
            beep=False,
            maxDurationSeconds=0,
            terminateOn="none",
        )
        return LiveRecording.from_json(data)

    async def stop_recording(self, name: str) -> None:
        await self.call("recording_stop", recordingName=name)

    async def recording_file(self, name: str) -> bytes:
        return await self.call("stored_file", recordingName=name)  # type: ignore[no-any-return]

    async def set_event_filter(self, allowed: tuple[str, ...]) -> None:
        """Only these event types reach our websocket (Asterisk drops the rest, e.g. the
        stream of ChannelVarset), so neither side spends time on events nobody reads.
        RESTResponse is always let through: the filter applies to the answers of REST over
        the websocket too, and without them every request would time out."""
        types = (*allowed, "RESTResponse") if "RESTResponse" not in allowed else allowed
        await self.call(
            "app_event_filter", applicationName=self.app, raw_body={"allowed": [{"type": t} for t in types]}
        )

    async def endpoint_state(self, tech: str, resource: str) -> str:
        """The endpoint's state: "online" (a phone registered), "offline" (no contact) or "unknown"."""
        data = await self.call("endpoint_get", tech=tech, resource=resource)
        return str((data or {}).get("state", "unknown"))

    async def get_var(self, channel_id: str, variable: str) -> str:
        data = await self.call("get_var", channelId=channel_id, variable=variable)
        return str((data or {}).get("value", ""))

    # -- events -------------------------------------------------------------------------

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


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no RESTResponse in time"))


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


async def wait_connected(client: AriClient, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(client.connected.wait(), max(0.0, deadline - time.monotonic()))
    return client.connected.is_set()
