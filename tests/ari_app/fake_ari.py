"""A fake Asterisk ARI for the call-logic tests: the REST subset ari_app uses and the
`/ari/events` websocket (with REST over it, as Asterisk ≥ 22.4 offers), on a loop of its own.

It keeps a small model of channels, bridges and live recordings, so its REST answers are
consistent the way Asterisk's are (404 "Channel not found" for a channel that is gone, 409 for
a duplicate id, `ERRORS` below: checked against the real Asterisk 22 by
tests/pbx/test_ari_recordings.py). Its events are the real ones: every event it sends is a
recorded Asterisk 22 event of the same type and channel role (tests/fixtures/ari/*.json,
recorded by that PBX test) with the ids, names, numbers, state and time of this channel put
in. The order it sends them in for a channel (StasisStart when a phone answers; StasisEnd
then ChannelDestroyed when it hangs up; a bare ChannelDestroyed for a channel that never
answered) is checked against the recordings by tests/ari_app/test_fake_ari.py.

Nothing happens by itself unless asked: an originated channel rings until the test answers
it (`answer`), or it is answered at once when its endpoint is in `auto_answer`. Tests make
races by acting at a chosen moment: `before(op, hook)` runs a hook when ari_app's request
`op` arrives, before it is answered (a hang-up while ari_app is half-way through a command).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

from aiohttp import WSMsgType, web

T = TypeVar("T")
Json = dict[str, Any]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ari"

# Asterisk 22's answers to requests on things that do not exist (or not in Stasis): status
# and message, as the real one gives them (tests/pbx/test_ari_recordings.py compares).
ERRORS: dict[str, tuple[int, str]] = {
    "channel_get": (404, "Channel not found"),
    "hangup": (404, "Channel not found"),
    "answer": (404, "Channel not found"),
    "ring": (404, "Channel not found"),
    "moh_start": (404, "Channel not found"),
    "send_dtmf": (404, "Channel not found"),
    "get_var": (404, "Provided channel was not found"),
    "get_var_unset": (404, "Provided variable was not found"),
    "originate_originator": (400, "Provided originator channel was not found"),
    "originate_duplicate": (409, "Channel with given unique ID already exists"),
    "bridge_get": (404, "Bridge not found"),
    "bridge_destroy": (404, "Bridge not found"),
    "bridge_add_no_bridge": (404, "Bridge not found"),
    "bridge_add_no_channel": (400, "Channel not found"),
    "bridge_remove_no_channel": (400, "Channel not found"),
    "bridge_remove_not_in_bridge": (422, "Channel not in this bridge"),
    "bridge_add_not_in_stasis": (422, "Channel not in Stasis application"),
    "channel_not_in_stasis": (409, "Channel not in Stasis application"),
    "bridge_record_no_bridge": (404, "Bridge not found"),
    "recording_stop": (404, "Recording not found"),
    "stored_file": (404, "Recording not found"),
    "endpoint_get": (404, "Endpoint not found"),
}

# our channel ids: <uid>-<role><n>; what the role's three letters stand for
ROLES = {"reg": "registrar", "rem": "remote", "age": "agent", "thi": "third", "tra": "transfer"}
_OURS = re.compile(r"-([a-z]{3})\d+$")


def role_of(channel_id: str) -> str:
    m = _OURS.search(channel_id)
    return ROLES.get(m.group(1), "other") if m else "inbound"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class Templates:
    """The recorded events, by (type, channel role): the first recording of each wins."""

    def __init__(self, folder: Path = FIXTURES) -> None:
        self.by_key: dict[tuple[str, str], Json] = {}
        self.by_type: dict[str, Json] = {}
        self.asterisk = ""
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text())
            if "events" not in data:
                continue
            self.asterisk = self.asterisk or str(data.get("asterisk", ""))
            for event in data["events"]:
                kind = str(event.get("type", ""))
                cid = (event.get("channel") or {}).get("id", "")
                role = _fixture_role(cid) if cid else ""
                self.by_key.setdefault((kind, role), event)
                self.by_type.setdefault(kind, event)
        if not self.by_type:
            raise RuntimeError(f"no recorded ARI events in {folder} (tests/pbx/test_ari_recordings.py)")

    def event(self, kind: str, role: str = "") -> Json:
        found = self.by_key.get((kind, role)) or self.by_type.get(kind)
        if found is None:
            raise KeyError(f"no recorded {kind} event (role {role!r}) in tests/fixtures/ari")
        return copy.deepcopy(found)

    def channel(self, role: str) -> Json:
        """A recorded channel object of this role (the richest: a StasisStart's)."""
        for kind in ("StasisStart", "ChannelDestroyed", "StasisEnd"):
            found = self.by_key.get((kind, role))
            if found is not None:
                return copy.deepcopy(found["channel"])
        return copy.deepcopy(self.by_type["StasisStart"]["channel"])


def _fixture_role(cid: str) -> str:
    return "inbound" if cid.startswith("{in") and "-" not in cid else role_of(cid)


@dataclass
class FakeChannel:
    id: str
    name: str
    role: str
    endpoint: str
    state: str = "Down"
    caller: Json = field(default_factory=lambda: {"name": "", "number": ""})
    connected: Json = field(default_factory=lambda: {"name": "", "number": ""})
    dialplan: Json = field(default_factory=lambda: {"context": "default", "exten": "s", "priority": 1,
                                                    "app_name": "", "app_data": ""})  # fmt: skip
    args: list[str] = field(default_factory=list)
    originator: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    in_stasis: bool = False
    bridge: str | None = None
    creationtime: str = field(default_factory=now_iso)
    dtmf: list[str] = field(default_factory=list)
    moh: bool = False
    ringing: bool = False


@dataclass
class FakeBridge:
    id: str
    bridge_type: str
    name: str
    channels: list[str] = field(default_factory=list)
    creationtime: str = field(default_factory=now_iso)
    moh: bool = False


@dataclass
class Request:
    op: str
    method: str
    path: str
    params: Json
    status: int = 0


class Reply(Exception):
    """An ARI error answer: raise it in a handler or a hook."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Hook = Callable[[Request], Awaitable[None] | None]

# REST routes: (method, regex) → op name (the names of ari_app/client.py's OPS)
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile("^" + p + "$"), op)
    for m, p, op in (
        ("GET", r"/asterisk/info", "asterisk_info"),
        ("GET", r"/channels", "channels_list"),
        ("POST", r"/channels", "originate"),
        ("POST", r"/channels/create", "channel_create"),
        ("GET", r"/channels/(?P<channelId>[^/]+)", "channel_get"),
        ("DELETE", r"/channels/(?P<channelId>[^/]+)", "hangup"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/answer", "answer"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/ring", "ring"),
        ("DELETE", r"/channels/(?P<channelId>[^/]+)/ring", "ring_stop"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/hold", "hold"),
        ("DELETE", r"/channels/(?P<channelId>[^/]+)/hold", "unhold"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/moh", "moh_start"),
        ("DELETE", r"/channels/(?P<channelId>[^/]+)/moh", "moh_stop"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/mute", "mute"),
        ("DELETE", r"/channels/(?P<channelId>[^/]+)/mute", "unmute"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/dtmf", "send_dtmf"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/continue", "continue"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/dial", "channel_dial"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/move", "move"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/redirect", "redirect"),
        ("GET", r"/channels/(?P<channelId>[^/]+)/variable", "get_var"),
        ("POST", r"/channels/(?P<channelId>[^/]+)/variable", "set_var"),
        ("GET", r"/bridges", "bridges_list"),
        ("GET", r"/bridges/(?P<bridgeId>[^/]+)", "bridge_get"),
        ("POST", r"/bridges/(?P<bridgeId>[^/]+)", "bridge_create"),
        ("DELETE", r"/bridges/(?P<bridgeId>[^/]+)", "bridge_destroy"),
        ("POST", r"/bridges/(?P<bridgeId>[^/]+)/addChannel", "bridge_add"),
        ("POST", r"/bridges/(?P<bridgeId>[^/]+)/removeChannel", "bridge_remove"),
        ("POST", r"/bridges/(?P<bridgeId>[^/]+)/moh", "bridge_moh_start"),
        ("DELETE", r"/bridges/(?P<bridgeId>[^/]+)/moh", "bridge_moh_stop"),
        ("POST", r"/bridges/(?P<bridgeId>[^/]+)/record", "bridge_record"),
        ("POST", r"/recordings/live/(?P<recordingName>[^/]+)/stop", "recording_stop"),
        ("GET", r"/recordings/live/(?P<recordingName>[^/]+)", "recording_get"),
        ("GET", r"/recordings/stored/(?P<recordingName>[^/]+)", "stored_get"),
        ("DELETE", r"/recordings/stored/(?P<recordingName>[^/]+)", "stored_delete"),
        ("GET", r"/recordings/stored/(?P<recordingName>[^/]+)/file", "stored_file"),
        ("GET", r"/endpoints/(?P<tech>[^/]+)/(?P<resource>[^/]+)", "endpoint_get"),
        ("GET", r"/applications/(?P<applicationName>[^/]+)", "app_get"),
        ("PUT", r"/applications/(?P<applicationName>[^/]+)/eventFilter", "app_event_filter"),
    )
]


class FakeAri:
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

    def accept(self) -> None:
        self.call(lambda: setattr(self, "accepting", True))

    # -- the same, for hooks (they run on the fake's loop) ------------------------------

    def answer_now(self, channel_id: str) -> None:
        self._answer(channel_id)

    def hang_up_now(self, channel_id: str, cause: int = 16) -> None:
        self._destroy(channel_id, cause)

    # -- model changes (on the fake's loop) -----------------------------------------------

    def _channel_json(self, ch: FakeChannel) -> Json:
        data = self.templates.channel(ch.role)
        data.update(
            id=ch.id,
            name=ch.name,
            state=ch.state,
            caller=dict(ch.caller),
            connected=dict(ch.connected),
            dialplan=dict(ch.dialplan),
            creationtime=ch.creationtime,
        )
        data.setdefault("protocol_id", "")
        return data

    def _snapshot_of(self, channel_id: str) -> Json:
        ch = self.channels.get(channel_id) or self._gone.get(channel_id)
        if ch is None:
            raise KeyError(channel_id)
        return self._channel_json(ch)

    def _event(self, kind: str, channel: Json, **fields: Any) -> Json:
        event = self.templates.event(kind, role_of(channel["id"]))
        event["channel"] = channel
        event["timestamp"] = now_iso()
        event["application"] = self._app
        event.update(fields)
        return event

    def _emit(self, event: Json) -> None:
        with self._cond:
            self.sent.append(event)
            self._cond.notify_all()
        if self.filter is not None and event.get("type") not in self.filter:
            return
        text = json.dumps(event)
        for outbox in list(self._sockets.values()):
            outbox.put_nowait(text)

    def _answer(self, channel_id: str) -> None:
        ch = self.channels.get(channel_id)
        if ch is None or ch.in_stasis:
            return
        ch.state, ch.in_stasis, ch.ringing = "Up", True, False
        self._emit(self._event("StasisStart", self._channel_json(ch), args=list(ch.args)))
        self._changed()

    def _destroy(self, channel_id: str, cause: int = 16) -> None:
        ch = self.channels.pop(channel_id, None)
        if ch is None:
            return
        self._gone[channel_id] = ch
        if ch.bridge is not None and ch.bridge in self.bridges:
            self.bridges[ch.bridge].channels.remove(channel_id)
        snapshot = self._channel_json(ch)
        if ch.in_stasis:
            self._emit(self._event("StasisEnd", snapshot))
        if ch.role == "inbound":
            # a channel the app did not originate is no longer reported to it once it has left
            # Stasis: Asterisk 22 sends it no ChannelDestroyed (recorded: incoming_*.json)
            self._changed()
            return
        cause_txt = {16: "Normal Clearing", 17: "User busy", 18: "No user responding", 19: "No answer",
                     21: "Call Rejected", 32: "Circuit/channel congestion"}.get(cause, "Unknown")  # fmt: skip
        self._emit(self._event("ChannelDestroyed", snapshot, cause=cause, cause_txt=cause_txt))
        self._changed()

    def _incoming(self, did: str, number: str, name: str, patient_id: int | None) -> str:
        cid = f"{int(time.time())}.{next(self._seq)}"
        ch = FakeChannel(cid, f"PJSIP/trunk-{next(self._seq):08x}", "inbound", "PJSIP/trunk", state="Ring")
        ch.caller = {"name": name or number, "number": number}
        ch.dialplan = {"context": "clinic-inbound", "exten": did, "priority": 4,
                       "app_name": "Stasis", "app_data": f"{self._app},inbound,{did}"}  # fmt: skip
        ch.args = ["inbound", did]
        if patient_id is not None:
            ch.variables["PATIENT_ID"] = str(patient_id)
        ch.in_stasis = True
        self.channels[cid] = ch
        self._emit(self._event("StasisStart", self._channel_json(ch), args=list(ch.args)))
        self._changed()
        return cid

    # -- REST -------------------------------------------------------------------------

    async def rest(self, method: str, path: str, query: Json, body: Json | None) -> tuple[int, Any]:
        """One ARI request → (status, JSON answer or None)."""
        for m, pattern, op in _ROUTES:
            found = pattern.match(path) if m == method else None
            if found is None:
                continue
            params = {**{k: unquote(v) for k, v in found.groupdict().items()}, **query}
            req = Request(op, method, path, params)
            with self._cond:
                self.requests.append(req)
            try:
                for hook in list(self._hooks.get(op, ())):
                    result = hook(req)
                    if result is not None:
                        await result
                status, answer = getattr(self, "_op_" + op)(params, body or {})
            except Reply as exc:
                status, answer = exc.status, {"message": exc.message}
            req.status = status
            self._changed()
            return status, answer
        return 404, {"message": "Resource not found"}

    def _fail(self, key: str) -> Reply:
        return Reply(*ERRORS[key])

    def _chan(self, params: Json, key: str) -> FakeChannel:
        ch = self.channels.get(str(params.get("channelId")))
        if ch is None:
            raise self._fail(key)
        return ch

    def _op_asterisk_info(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, {"system": {"version": self.version, "entity_id": "00:00:00:00:00:00"},
                     "build": {"os": "Linux"}, "status": {}, "config": {}}  # fmt: skip

    def _op_channels_list(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, [self._channel_json(ch) for ch in self.channels.values()]

    def _op_channel_get(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, self._channel_json(self._chan(p, "channel_get"))

    def _op_originate(self, p: Json, b: Json) -> tuple[int, Any]:
        ch = self._new_channel(p, b)
        answer = self._channel_json(ch)
        if ch.endpoint in self.fail_originate:
            self._destroy(ch.id, self.fail_originate[ch.endpoint])
        elif ch.endpoint in self.auto_answer:
            self.loop.call_soon(self._answer, ch.id)
        return 200, answer

    def _new_channel(self, p: Json, b: Json) -> FakeChannel:
        cid = str(p.get("channelId") or f"{int(time.time())}.{next(self._seq)}")
        if cid in self.channels:
            raise self._fail("originate_duplicate")
        originator = p.get("originator")
        if originator and originator not in self.channels:
            raise self._fail("originate_originator")
        endpoint = str(p["endpoint"])
        tech, _, resource = endpoint.partition("/")
        where = resource.split("@", 1)[1] if "@" in resource else resource
        ch = FakeChannel(cid, f"{tech}/{where}-{next(self._seq):08x}", role_of(cid), endpoint)
        raw_cid = str(p.get("callerId") or "")
        m = re.match(r"^(.*?)\s*<([^>]*)>$", raw_cid)
        ch.caller = {"name": m.group(1) if m else raw_cid, "number": m.group(2) if m else raw_cid}
        ch.connected = {"name": "", "number": resource.split("@", 1)[0]}
        ch.args = str(p.get("appArgs") or "").split(",") if p.get("appArgs") else []
        ch.originator = originator
        ch.variables.update((b.get("variables") or {}) if isinstance(b, dict) else {})
        ch.ringing = True
        self.channels[cid] = ch
        return ch

    def _op_channel_create(self, p: Json, b: Json) -> tuple[int, Any]:
        """A channel made and not dialled yet (`/dial` rings it; the test answers it)."""
        ch = self._new_channel(p, b)
        ch.ringing = False
        return 200, self._channel_json(ch)

    def _op_channel_dial(self, p: Json, b: Json) -> tuple[int, Any]:
        ch = self._chan(p, "channel_get")
        ch.ringing = True
        if ch.endpoint in self.auto_answer:
            self.loop.call_soon(self._answer, ch.id)
        return 204, None

    def _op_move(self, p: Json, b: Json) -> tuple[int, Any]:
        """To another Stasis application: it leaves ours (StasisEnd)."""
        return self._op_continue(p, b)

    def _op_redirect(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "answer")
        return 204, None

    def _op_recording_get(self, p: Json, b: Json) -> tuple[int, Any]:
        rec = self.recordings.get(str(p["recordingName"]))
        if rec is None:
            raise self._fail("recording_stop")
        return 200, dict(rec)

    def _op_stored_get(self, p: Json, b: Json) -> tuple[int, Any]:
        name = str(p["recordingName"])
        if name not in self.stored:
            raise self._fail("stored_file")
        return 200, {"name": name, "format": "wav"}

    def _op_stored_delete(self, p: Json, b: Json) -> tuple[int, Any]:
        if self.stored.pop(str(p["recordingName"]), None) is None:
            raise self._fail("stored_file")
        return 204, None

    def _op_hangup(self, p: Json, b: Json) -> tuple[int, Any]:
        ch = self._chan(p, "hangup")
        self.loop.call_soon(self._destroy, ch.id, 16)  # Asterisk hangs up after answering
        return 204, None

    def _in_stasis(self, p: Json, key: str) -> FakeChannel:
        ch = self._chan(p, key)
        if not ch.in_stasis:
            raise self._fail("channel_not_in_stasis")
        return ch

    def _op_answer(self, p: Json, b: Json) -> tuple[int, Any]:
        ch = self._in_stasis(p, "answer")
        ch.state = "Up"
        return 204, None

    def _op_ring(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "ring").ringing = True
        return 204, None

    def _op_ring_stop(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "ring").ringing = False
        return 204, None

    def _op_hold(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "answer")
        return 204, None

    _op_unhold = _op_mute = _op_unmute = _op_hold

    def _op_moh_start(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "moh_start").moh = True
        return 204, None

    def _op_moh_stop(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "moh_start").moh = False
        return 204, None

    def _op_send_dtmf(self, p: Json, b: Json) -> tuple[int, Any]:
        self._in_stasis(p, "send_dtmf").dtmf.append(str(p.get("dtmf", "")))
        return 204, None

    def _op_continue(self, p: Json, b: Json) -> tuple[int, Any]:
        ch = self._in_stasis(p, "answer")
        ch.in_stasis = False
        self._emit(self._event("StasisEnd", self._channel_json(ch)))
        return 204, None

    def _op_get_var(self, p: Json, b: Json) -> tuple[int, Any]:
        ch = self._chan(p, "get_var")
        name = str(p.get("variable", ""))
        if name not in ch.variables:
            raise self._fail("get_var_unset")
        return 200, {"value": ch.variables[name]}

    def _op_set_var(self, p: Json, b: Json) -> tuple[int, Any]:
        self._chan(p, "get_var").variables[str(p.get("variable", ""))] = str(p.get("value", ""))
        return 204, None

    def _bridge_json(self, br: FakeBridge) -> Json:
        return {"id": br.id, "technology": "simple_bridge" if br.bridge_type == "holding" else "softmix",
                "bridge_type": br.bridge_type, "bridge_class": "stasis", "creator": "Stasis",
                "name": br.name, "channels": list(br.channels), "creationtime": br.creationtime,
                "video_mode": "none"}  # fmt: skip

    def _bridge(self, p: Json, key: str) -> FakeBridge:
        br = self.bridges.get(str(p.get("bridgeId")))
        if br is None:
            raise self._fail(key)
        return br

    def _op_bridges_list(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, [self._bridge_json(br) for br in self.bridges.values()]

    def _op_bridge_get(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, self._bridge_json(self._bridge(p, "bridge_get"))

    def _op_bridge_create(self, p: Json, b: Json) -> tuple[int, Any]:
        bid = str(p["bridgeId"])
        br = self.bridges.get(bid)
        if br is None:
            kind = "holding" if "holding" in str(p.get("type", "")) else "mixing"
            br = self.bridges[bid] = FakeBridge(bid, kind, str(p.get("name") or ""))
        return 200, self._bridge_json(br)

    def _op_bridge_destroy(self, p: Json, b: Json) -> tuple[int, Any]:
        br = self._bridge(p, "bridge_destroy")
        for name, rec in list(self.recordings.items()):
            if rec["target_uri"] == f"bridge:{br.id}":  # the recording ends with its bridge
                del self.recordings[name]
                self.stored[name] = b"RIFF-fake-wav"
                done = {**rec, "state": "done", "duration": 1}
                self.loop.call_soon(self._emit, self._recording_event("RecordingFinished", done))
        for cid in br.channels:
            if cid in self.channels:
                self.channels[cid].bridge = None
        del self.bridges[br.id]
        return 204, None

    def _op_bridge_add(self, p: Json, b: Json) -> tuple[int, Any]:
        br = self._bridge(p, "bridge_add_no_bridge")
        ids = str(p.get("channel", "")).split(",")
        for cid in ids:
            if cid not in self.channels:
                raise self._fail("bridge_add_no_channel")
            if not self.channels[cid].in_stasis:
                raise self._fail("bridge_add_not_in_stasis")
        for cid in ids:
            ch = self.channels[cid]
            if ch.bridge is not None and ch.bridge in self.bridges and ch.bridge != br.id:
                self.bridges[ch.bridge].channels.remove(cid)  # Asterisk moves it
            if cid not in br.channels:
                br.channels.append(cid)
            ch.bridge = br.id
        return 204, None

    def _op_bridge_remove(self, p: Json, b: Json) -> tuple[int, Any]:
        br = self._bridge(p, "bridge_add_no_bridge")
        ids = str(p.get("channel", "")).split(",")
        for cid in ids:
            if cid not in self.channels:
                raise self._fail("bridge_remove_no_channel")
            if cid not in br.channels:
                raise self._fail("bridge_remove_not_in_bridge")
        for cid in ids:
            br.channels.remove(cid)
            self.channels[cid].bridge = None
        return 204, None

    def _op_bridge_moh_start(self, p: Json, b: Json) -> tuple[int, Any]:
        self._bridge(p, "bridge_get").moh = True
        return 204, None

    def _op_bridge_moh_stop(self, p: Json, b: Json) -> tuple[int, Any]:
        self._bridge(p, "bridge_get").moh = False
        return 204, None

    def _op_bridge_record(self, p: Json, b: Json) -> tuple[int, Any]:
        br = self._bridge(p, "bridge_record_no_bridge")
        name = str(p["name"])
        if name in self.recordings:
            raise Reply(409, "Recording with that name already in progress")
        rec = {"name": name, "format": str(p.get("format", "wav")), "state": "recording",
               "target_uri": f"bridge:{br.id}"}  # fmt: skip
        self.recordings[name] = rec
        self.loop.call_soon(self._emit, self._recording_event("RecordingStarted", rec))
        return 201, {**rec, "state": "queued"}

    def _recording_event(self, kind: str, rec: Json) -> Json:
        event = self.templates.event(kind)
        event.update(recording=dict(rec), timestamp=now_iso(), application=self._app)
        return event

    def _op_recording_stop(self, p: Json, b: Json) -> tuple[int, Any]:
        rec = self.recordings.pop(str(p["recordingName"]), None)
        if rec is None:
            raise self._fail("recording_stop")
        done = {**rec, "state": "done", "duration": 2}
        self.stored[rec["name"]] = b"RIFF-fake-wav"
        self.loop.call_soon(self._emit, self._recording_event("RecordingFinished", done))
        return 204, None

    def _op_stored_file(self, p: Json, b: Json) -> tuple[int, Any]:
        data = self.stored.get(str(p["recordingName"]))
        if data is None:
            raise self._fail("stored_file")
        return 200, data

    def _op_endpoint_get(self, p: Json, b: Json) -> tuple[int, Any]:
        key = f"{p['tech']}/{p['resource']}"
        state = self.endpoints.get(key)
        if state is None:
            raise self._fail("endpoint_get")
        ids = [ch.id for ch in self.channels.values() if ch.endpoint == key]
        return 200, {"technology": p["tech"], "resource": p["resource"], "state": state, "channel_ids": ids}

    def _op_app_get(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, {"name": self._app, "channel_ids": [], "bridge_ids": [], "endpoint_ids": [],
                     "device_names": [], "events_allowed": [], "events_disallowed": []}  # fmt: skip

    def _op_app_event_filter(self, p: Json, b: Json) -> tuple[int, Any]:
        allowed = b.get("allowed") if isinstance(b, dict) else None
        self.filter = {str(t["type"]) for t in allowed} if allowed else None
        return 200, self._op_app_get(p, b)[1]

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
