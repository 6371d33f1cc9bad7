"""Typed ARI events and the resource models they carry (Asterisk 22 `events.json`).

Only the fields the application reads are typed; `raw` keeps the whole message. An event
type we do not model arrives as a plain `Event` with its `type` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Channel:
    id: str
    name: str = ""
    state: str = ""
    caller_number: str = ""
    caller_name: str = ""
    connected_number: str = ""
    context: str = ""
    exten: str = ""
    app_name: str = ""
    app_data: str = ""
    creationtime: str = ""
    channelvars: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Json | None) -> Channel:
        data = data or {}
        caller = data.get("caller") or {}
        connected = data.get("connected") or {}
        dialplan = data.get("dialplan") or {}
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            connected_number=str(connected.get("number", "")),
            context=str(dialplan.get("context", "")),
            exten=str(dialplan.get("exten", "")),
            app_name=str(dialplan.get("app_name", "")),
            app_data=str(dialplan.get("app_data", "")),
            creationtime=str(data.get("creationtime", "")),
            channelvars={k: str(v) for k, v in (data.get("channelvars") or {}).items()},
        )


@dataclass(frozen=True)
class Bridge:
    id: str
    technology: str = ""
    bridge_type: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Json | None) -> Bridge:
        data = data or {}
        return cls(
            id=str(data.get("id", "")),
            technology=str(data.get("technology", "")),
            bridge_type=str(data.get("bridge_type", "")),
            name=str(data.get("name", "")),
            channels=tuple(str(c) for c in data.get("channels") or ()),
        )


@dataclass(frozen=True)
class LiveRecording:
    name: str
    format: str = ""
    state: str = ""
    target_uri: str = ""
    duration: int | None = None
    cause: str = ""

    @classmethod
    def from_json(cls, data: Json | None) -> LiveRecording:
        data = data or {}
        duration = data.get("duration")
        return cls(
            name=str(data.get("name", "")),
            format=str(data.get("format", "")),
            state=str(data.get("state", "")),
            target_uri=str(data.get("target_uri", "")),
            duration=int(duration) if duration is not None else None,
            cause=str(data.get("cause", "")),
        )


@dataclass(frozen=True)
class Event:
    type: str
    application: str = ""
    timestamp: str = ""
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class StasisStart(Event):
    channel: Channel = field(default_factory=lambda: Channel(""))
    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True)
class ChannelEvent(Event):
    """Every event whose subject is one channel."""

    channel: Channel = field(default_factory=lambda: Channel(""))


@dataclass(frozen=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDestroyed(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int = 0
    soft: bool = False


@dataclass(frozen=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True)
class ChannelHold(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelUnhold(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelBridgeEvent(ChannelEvent):
    bridge: Bridge = field(default_factory=lambda: Bridge(""))


@dataclass(frozen=True)
class ChannelEnteredBridge(ChannelBridgeEvent):
    pass


@dataclass(frozen=True)
class ChannelLeftBridge(ChannelBridgeEvent):
    pass


@dataclass(frozen=True)
class BridgeDestroyed(Event):
    bridge: Bridge = field(default_factory=lambda: Bridge(""))


@dataclass(frozen=True)
class RecordingEvent(Event):
    recording: LiveRecording = field(default_factory=lambda: LiveRecording(""))


@dataclass(frozen=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(frozen=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(frozen=True)
class RecordingFailed(RecordingEvent):
    pass


@dataclass(frozen=True)
class Dial(Event):
    peer: Channel = field(default_factory=lambda: Channel(""))
    caller: Channel | None = None
    dialstatus: str = ""
    dialstring: str = ""


@dataclass(frozen=True)
class ApplicationReplaced(Event):
    pass


_CHANNEL_EVENTS: dict[str, type[ChannelEvent]] = {
    "StasisEnd": StasisEnd,
    "ChannelStateChange": ChannelStateChange,
    "ChannelHold": ChannelHold,
    "ChannelUnhold": ChannelUnhold,
}
_RECORDING_EVENTS: dict[str, type[RecordingEvent]] = {
    "RecordingStarted": RecordingStarted,
    "RecordingFinished": RecordingFinished,
    "RecordingFailed": RecordingFailed,
}


def parse_event(data: Json) -> Event:
    """One websocket message -> its typed event (or a plain Event for unmodelled types)."""
    kind = str(data.get("type", ""))
    base = {
        "type": kind,
        "application": str(data.get("application", "")),
        "timestamp": str(data.get("timestamp", "")),
        "raw": data,
    }
    channel = Channel.from_json(data.get("channel")) if "channel" in data else Channel("")
    if kind == "StasisStart":
        replace = data.get("replace_channel")
        return StasisStart(
            **base,
            channel=channel,
            args=tuple(str(a) for a in data.get("args") or ()),
            replace_channel=Channel.from_json(replace) if replace else None,
        )
    if kind in _CHANNEL_EVENTS:
        return _CHANNEL_EVENTS[kind](**base, channel=channel)
    if kind == "ChannelDestroyed":
        return ChannelDestroyed(
            **base,
            channel=channel,
            cause=int(data.get("cause") or 0),
            cause_txt=str(data.get("cause_txt", "")),
        )
    if kind == "ChannelHangupRequest":
        return ChannelHangupRequest(
            **base, channel=channel, cause=int(data.get("cause") or 0), soft=bool(data.get("soft", False))
        )
    if kind == "ChannelDtmfReceived":
        return ChannelDtmfReceived(
            **base,
            channel=channel,
            digit=str(data.get("digit", "")),
            duration_ms=int(data.get("duration_ms") or 0),
        )
    if kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        cls = ChannelEnteredBridge if kind == "ChannelEnteredBridge" else ChannelLeftBridge
        return cls(**base, channel=channel, bridge=Bridge.from_json(data.get("bridge")))
    if kind == "BridgeDestroyed":
        return BridgeDestroyed(**base, bridge=Bridge.from_json(data.get("bridge")))
    if kind in _RECORDING_EVENTS:
        return _RECORDING_EVENTS[kind](**base, recording=LiveRecording.from_json(data.get("recording")))
    if kind == "Dial":
        caller = data.get("caller")
        return Dial(
            **base,
            peer=Channel.from_json(data.get("peer")),
            caller=Channel.from_json(caller) if caller else None,
            dialstatus=str(data.get("dialstatus", "")),
            dialstring=str(data.get("dialstring", "")),
        )
    if kind == "ApplicationReplaced":
        return ApplicationReplaced(**base)
    return Event(**base)
