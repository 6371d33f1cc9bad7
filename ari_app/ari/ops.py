"""The ARI operations the app may send: (HTTP method, path template, parameter names).
A test checks this table against the live `/ari/api-docs` of the running Asterisk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    # the own voice robot's prompts (ari_app/robot)
    "play": _op("POST", "/channels/{channelId}/play", "media", "lang", "playbackId"),
    "playback_stop": _op("DELETE", "/playbacks/{playbackId}"),
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
    "endpoints_by_tech": _op("GET", "/endpoints/{tech}"),
    "device_state_get": _op("GET", "/deviceStates/{deviceName}"),
    "app_subscribe": _op("POST", "/applications/{applicationName}/subscription", "eventSource"),
    "app_get": _op("GET", "/applications/{applicationName}"),
    "app_event_filter": _op("PUT", "/applications/{applicationName}/eventFilter", "filter"),
}

Recorder = Callable[[str, str, dict[str, Any]], None]  # (op name, method, params sent)

# Over HTTP even when REST rides the events websocket: binary answers (not carried in a
# RESTResponse), and the bridge moves. Asterisk answers one websocket's requests in turn,
# and a bridge move waits for the channel's own thread to carry it out; over HTTP (a thread
# per connection) it holds up nothing else (bench/calls.py: answered → bridged 38 → 13 ms
# at 50 concurrent calls).
# So is a channel variable's write: it waits for the channel's thread too (a standby line's
# connected line, sent as the patient is dialled: ari_app/standby).
HTTP_ONLY = frozenset({"stored_file", "bridge_add", "bridge_remove", "set_var"})


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
