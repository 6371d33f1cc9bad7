"""A thin async ARI client: REST over aiohttp's client, events over one websocket.

Every REST call goes through `AriClient.call(op, ...)` with an operation named in `OPS`:
(HTTP method, path template, the parameter names we may send). A test checks that table
against the live `/ari/api-docs` of the running Asterisk, and `recorder` (when set) sees
each request actually sent, so the test can check those too.

Errors are mapped by HTTP status to `AriError` subclasses; a transport failure is
`AriUnavailable`. The events loop (`run_events`) reconnects with exponential backoff and
calls `on_connect` after every (re)connection, which is where the application resyncs its
state (`GET /channels`, `GET /bridges`) — after an Asterisk restart its calls are gone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._password = password
        self.app = app
        self.recorder = recorder
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None  # created in the running loop, on first use
        self.connected = asyncio.Event()
        self._closing = False
        self._ws: Any = None
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
        stream of ChannelVarset), so neither side spends time on events nobody reads."""
        await self.call(
            "app_event_filter", applicationName=self.app, raw_body={"allowed": [{"type": t} for t in allowed]}
        )

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
                    self._ws = ws
                    delay = backoff[0]
                    log.info("ARI events connected (%s)", self.app)
                    self.connected.set()
                    if on_connect is not None:
                        await on_connect()
                    async for message in ws:
                        try:
                            event = parse_event(json.loads(message))
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
                if self.connected.is_set():
                    self.connected.clear()
                    self.reconnects += 1
                    if on_disconnect is not None and not self._closing:
                        await on_disconnect()
            if self._closing:
                break
            await asyncio.sleep(delay)  # backoff between attempts, not synchronisation
            delay = min(delay * 2, backoff[1])


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
