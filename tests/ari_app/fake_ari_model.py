"""The fake ARI's model and its recorded events: Asterisk 22's error answers (`ERRORS`), the
channels, bridges and requests it keeps, the REST routes it serves (named as ari_app's OPS),
and the recorded events (`Templates`, tests/fixtures/ari) its own events are made from.
No relative imports: tests/pbx/test_ari_recordings.py loads this file by path for `ERRORS`."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
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
        ("POST", r"/channels/(?P<channelId>[^/]+)/play", "play"),
        ("DELETE", r"/playbacks/(?P<playbackId>[^/]+)", "playback_stop"),
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
        ("GET", r"/endpoints/(?P<tech>[^/]+)", "endpoints_by_tech"),
        ("GET", r"/deviceStates/(?P<deviceName>.+)", "device_state_get"),
        ("POST", r"/applications/(?P<applicationName>[^/]+)/subscription", "app_subscribe"),
        ("GET", r"/applications/(?P<applicationName>[^/]+)", "app_get"),
        ("PUT", r"/applications/(?P<applicationName>[^/]+)/eventFilter", "app_event_filter"),
    )
]


