"""What the fake ARI does with its model (the mixin `AriModel` of FakeAri): ari_app's REST
requests answered as Asterisk 22 answers them, and the events a change sends (the recorded
ones, tests/fixtures/ari, with this channel's ids, names, numbers and state put in)."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from typing import Any
from urllib.parse import unquote

from clinic.softphone import STANDBY_EXTEN

from .fake_ari_model import (
    ERRORS,
    ROUTES,
    FakeBridge,
    FakeChannel,
    Hook,
    Json,
    Reply,
    Request,
    Templates,
    now_iso,
    role_of,
)


class AriModel:
    """Channels, bridges, recordings; the REST operations on them (`rest`); the events they
    send (`_emit`, given by FakeAri: to its websockets)."""

    templates: Templates
    version: str
    loop: asyncio.AbstractEventLoop
    channels: dict[str, FakeChannel]
    _gone: dict[str, FakeChannel]
    _app: str
    bridges: dict[str, FakeBridge]
    recordings: dict[str, Json]
    stored: dict[str, bytes]
    endpoints: dict[str, str]
    auto_answer: set[str]
    fail_originate: dict[str, int]
    requests: list[Request]
    filter: set[str] | None
    _hooks: dict[str, list[Hook]]
    _seq: itertools.count[int]
    _cond: threading.Condition

    def _changed(self) -> None:
        raise NotImplementedError

    def _emit(self, event: Json) -> None:
        raise NotImplementedError

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
        if ch.role in ("inbound", "standby"):
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

    def _standby(self, endpoint: str, earlier_app: bool) -> str:
        """A browser softphone's standby call (ari_app/standby): the phone `endpoint` dials the
        dialplan's `mis-standby`, `Stasis(clinic,standby)`, unanswered (state Ring). With
        `earlier_app` it was answered by an ari_app before this one: up, in Stasis, and no
        event about it is sent (this ari_app never heard of it)."""
        cid = f"{int(time.time())}.{next(self._seq)}"
        ch = FakeChannel(cid, f"{endpoint}-{next(self._seq):08x}", "standby", endpoint,
                         state="Up" if earlier_app else "Ring")  # fmt: skip
        ch.caller = {"name": "", "number": endpoint.partition("/")[2]}
        ch.dialplan = {"context": "clinic-internal", "exten": STANDBY_EXTEN, "priority": 1,
                       "app_name": "Stasis", "app_data": f"{self._app},standby"}  # fmt: skip
        ch.args = ["standby"]
        ch.in_stasis = True
        self.channels[cid] = ch
        if not earlier_app:
            self._emit(self._event("StasisStart", self._channel_json(ch), args=list(ch.args)))
        self._changed()
        return cid

    # -- REST -------------------------------------------------------------------------

    async def rest(self, method: str, path: str, query: Json, body: Json | None) -> tuple[int, Any]:
        """One ARI request → (status, JSON answer or None)."""
        for m, pattern, op in ROUTES:
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

    def _op_play(self, p: Json, b: Json) -> tuple[int, Any]:
        """The own robot's prompt (ari_app/robot): accepted; no media is played here."""
        ch = self._in_stasis(p, "send_dtmf")
        return 201, {"id": str(p.get("playbackId", "")), "media_uri": str(p.get("media", "")),
                     "target_uri": f"channel:{ch.id}", "state": "queued"}

    def _op_playback_stop(self, p: Json, b: Json) -> tuple[int, Any]:
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

    # presence (ari_app/presence): registrations as `endpoints` says; a phone's device state
    # in a call, and the events, are fake_ari_presence.PresenceFakeAri's
    def _op_endpoints_by_tech(self, p: Json, b: Json) -> tuple[int, Any]:
        listed = []
        for key, state in sorted(self.endpoints.items()):
            tech, _, resource = key.partition("/")
            if tech == p["tech"]:
                ids = [ch.id for ch in self.channels.values() if ch.endpoint == key]
                listed.append({"technology": tech, "resource": resource, "state": state, "channel_ids": ids})
        return 200, listed

    def _op_device_state_get(self, p: Json, b: Json) -> tuple[int, Any]:
        name = str(p["deviceName"])
        state = {"online": "NOT_INUSE", "offline": "UNAVAILABLE"}.get(self.endpoints.get(name, ""), "INVALID")
        return 200, {"name": name, "state": state}

    def _op_app_subscribe(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, self._op_app_get(p, b)[1]

    def _op_app_get(self, p: Json, b: Json) -> tuple[int, Any]:
        return 200, {"name": self._app, "channel_ids": [], "bridge_ids": [], "endpoint_ids": [],
                     "device_names": [], "events_allowed": [], "events_disallowed": []}  # fmt: skip

    def _op_app_event_filter(self, p: Json, b: Json) -> tuple[int, Any]:
        allowed = b.get("allowed") if isinstance(b, dict) else None
        self.filter = {str(t["type"]) for t in allowed} if allowed else None
        return 200, self._op_app_get(p, b)[1]

