"""The REST half of the ARI client: REST over the events websocket once it is up
(Asterisk ≥ 22.4: `RESTRequest`/`RESTResponse`), over aiohttp's HTTP client before that,
against an older Asterisk, and for binary answers.

Every REST call goes through `call(op, ...)` with an operation named in `OPS` (ari/ops.py);
`recorder` (when set) sees each request actually sent, so a test can check those too.

Why the websocket: Asterisk's HTTP server takes a thread per connection and a burst of
requests opens connections at once (200 concurrent `GET /asterisk/info`: 1.85 s over HTTP,
7 ms over the websocket on 22.10), and each HTTP request costs our event loop several times
what one websocket message does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp
from websockets.exceptions import WebSocketException

from ari_app.ari.errors import AriConflict, AriError, AriUnavailable, error_for
from ari_app.ari.ops import HTTP_ONLY, OPS, Recorder, query_value
from ari_app.events import Bridge, Channel, LiveRecording

log = logging.getLogger(__name__)

Json = dict[str, Any]


def supports_rest_over_ws(version: str) -> bool:
    """REST over the events websocket came in Asterisk 20.14, 21.9 and 22.4."""
    try:
        major, minor = (int(part) for part in version.split("+")[0].split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return major >= 23 or (major, minor) >= {20: (20, 14), 21: (21, 9), 22: (22, 4)}.get(major, (99, 0))


class AriRest:
    """The REST half of the client (the events half, ari/socket.py, adds the websocket)."""

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
                query[key] = query_value(value)
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

    async def add_to_bridge(self, bridge_id: str, *channel_ids: str, keep_identities: bool = False) -> None:
        """`keep_identities`: the joining channels are not presented to each other (no
        connected-line update from the bridge: ours stands)."""
        extra = {"inhibitConnectedLineUpdates": True} if keep_identities else {}
        await self.call("bridge_add", bridgeId=bridge_id, channel=",".join(channel_ids), **extra)

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


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no RESTResponse in time"))
