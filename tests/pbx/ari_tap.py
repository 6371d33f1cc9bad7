"""Record the ARI events the real ari_app receives from the real Asterisk 22, and turn them
into the fixtures the fake ARI replays (tests/fixtures/ari/<scenario>.json).

The tap wraps `parse_event` where the ARI client's websocket loop looks it up, so it sees
every message of that socket in arrival order, exactly as ari_app gets it (after the app's
event filter), without a hook in ari_app. Ids are normalised so a fixture does not depend on
the run: our channel ids `<uid>-reg1` become `{uid}-reg1`, Asterisk's own ids (incoming
calls) `{in1}`, `{in2}`…; the incoming call's uid (derived from its channel id) follows.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Json = dict[str, Any]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ari"

_INBOUND_LEG = re.compile(r"^in[0-9A-Za-z]+-[a-z]{3}\d+(-2)?$")  # <incoming call's uid>-age2
_OURS = re.compile(r"^([0-9a-f]{16})-([a-z]{3})(\d+)(-2)?$")  # <uid>-<role><n>[-2: Local's other half]


class Tap:
    def __init__(self) -> None:
        self.events: list[Json] = []
        self.cond = threading.Condition()
        self.flowing = threading.Event()  # cleared: ari_app's reader waits (see `held`)
        self.flowing.set()
        self.limit = 15.0

    def add(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("type") != "RESTResponse":
            with self.cond:
                self.events.append(json.loads(json.dumps(data)))  # a copy, never the live dict
                self.cond.notify_all()

    def wait(self, pred: Callable[[list[Json]], bool], timeout: float = 15.0, what: str = "") -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.events), timeout):
                seen = [(e.get("type"), (e.get("channel") or {}).get("id")) for e in self.events]
                raise TimeoutError(f"ARI events: {what or 'condition'} not met in {timeout} s; got {seen}")

    @contextlib.contextmanager
    def held(self, limit: float = 15.0) -> Iterator[None]:
        """ari_app hears of nothing while the block runs: the events are recorded and wait in
        arrival order, then reach it. A race a scenario wants on record (two phones answering
        before ari_app has picked either) then happens every run, not only on a slow one.
        `limit` bounds the wait should the block never end."""
        self.flowing.clear()
        self.limit = limit
        try:
            yield
        finally:
            self.flowing.set()

    def snapshot(self) -> list[Json]:
        with self.cond:
            return list(self.events)


@contextlib.contextmanager
def tapped() -> Iterator[Tap]:
    """Record every event ari_app's client reads while the block runs."""
    from ari_app.client import AriClient

    module = sys.modules[AriClient.run_events.__module__]
    original = module.parse_event  # type: ignore[attr-defined]
    tap = Tap()

    def parse(data: Any) -> Any:
        tap.add(data)
        tap.flowing.wait(tap.limit)
        return original(data)

    module.parse_event = parse  # type: ignore[attr-defined]
    try:
        yield tap
    finally:
        module.parse_event = original  # type: ignore[attr-defined]


def channel_ids(events: list[Json]) -> list[str]:
    """Channel ids in order of first appearance."""
    seen: dict[str, None] = {}
    for event in events:
        cid = (event.get("channel") or {}).get("id")
        if cid:
            seen.setdefault(cid, None)
    return list(seen)


def normalise(events: list[Json]) -> list[Json]:
    """The events with run-specific ids replaced by placeholders (see the module docstring)."""
    subs: dict[str, str] = {}
    uids: dict[str, str] = {}
    foreign = 0
    for cid in channel_ids(events):
        if cid.startswith("{") or _INBOUND_LEG.match(cid):  # normalised already; or named after
            continue  # an incoming call's uid, replaced with it
        m = _OURS.match(cid)
        if m:
            uids.setdefault(m.group(1), "{uid}" if not uids else f"{{uid{len(uids) + 1}}}")
        elif cid not in subs:
            foreign += 1
            subs[cid] = f"{{in{foreign}}}"
    # an incoming call's uid names its registrars' legs: `agent,<uid>`, `<uid>-age1`
    inbound = 0
    for event in events:
        args = [str(a) for a in event.get("args") or []]
        agent = event.get("type") == "StasisStart" and len(args) >= 2 and args[0] == "agent"
        named = [args[1]] if agent else []
        cid = str((event.get("channel") or {}).get("id", ""))
        if _INBOUND_LEG.match(cid):
            named.append(cid.removesuffix("-2").rsplit("-", 1)[0])
        for uid in named:
            if uid not in subs and not uid.startswith("{"):
                inbound += 1
                subs[uid] = f"{{inuid{inbound}}}"
    subs.update(uids)
    if not subs:
        return [json.loads(json.dumps(e)) for e in events]
    pattern = re.compile("|".join(re.escape(k) for k in sorted(subs, key=len, reverse=True)))

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: subs[m.group(0)], value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    return [fix(e) for e in events]


def role_of(channel_id: str) -> str:
    """`{uid}-reg1` → registrar, `{in1}` → inbound (see the fake's channel roles)."""
    if channel_id.startswith("{in"):
        return "inbound"
    tail = channel_id.rsplit("-", 1)[-1] if not channel_id.endswith("-2") else channel_id.rsplit("-", 2)[-2]
    return {"reg": "registrar", "rem": "remote", "age": "agent", "thi": "third", "tra": "transfer"}.get(
        tail.rstrip("0123456789"), "other"
    )


# The fields ari_app reads (ari_app/events.py), by event type: a fixture must keep them
READ_FIELDS: dict[str, tuple[str, ...]] = {
    "StasisStart": ("args", "channel.id", "channel.name", "channel.state", "channel.caller.number",
                    "channel.caller.name", "channel.dialplan.context", "channel.dialplan.exten"),
    "StasisEnd": ("channel.id",),
    "ChannelDestroyed": ("channel.id", "cause", "cause_txt"),
    "ChannelDtmfReceived": ("channel.id", "digit", "duration_ms"),
    "RecordingStarted": ("recording.name", "recording.state"),
    "RecordingFinished": ("recording.name", "recording.state", "recording.duration"),
    "RecordingFailed": ("recording.name", "recording.state"),
}


def _has(event: Json, dotted: str) -> bool:
    value: Any = event
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


# presence's device states (ari_app/presence subscribes the app to them) interleave with a
# call's events in a number that depends on timing; their shape is presence's own fixture's
# (tests/fixtures/ari-presence, checked by tests/pbx/test_presence.py)
PRESENCE_ONLY = frozenset({"DeviceStateChanged"})


def shape(events: list[Json]) -> dict[str, Any]:
    """What must not change between Asterisk runs: each channel's event types in order
    (channels by role, in order of appearance), the Stasis arguments, the hang-up causes,
    and which of the fields ari_app reads are present."""
    normal = normalise(events)
    per_channel: list[tuple[str, list[str]]] = []
    index: dict[str, int] = {}
    others: list[str] = []
    missing: list[str] = []
    for event in normal:
        kind = event.get("type", "")
        for dotted in READ_FIELDS.get(kind, ()):
            if not _has(event, dotted):
                missing.append(f"{kind}.{dotted}")
        cid = (event.get("channel") or {}).get("id")
        if kind in PRESENCE_ONLY:
            continue
        if not cid:
            others.append(kind)
            continue
        if cid not in index:
            index[cid] = len(per_channel)
            per_channel.append((cid, []))
        label = kind
        if kind == "StasisStart":
            label += "(" + ",".join(event.get("args") or []) + ")"
        elif kind == "ChannelDestroyed":
            label += f"({event.get('cause')})"
        per_channel[index[cid]][1].append(label)
    return {
        "channels": {cid: types for cid, types in per_channel},
        "other": others,
        "missing_fields": sorted(set(missing)),
    }


def save(name: str, events: list[Json], *, description: str, asterisk: str) -> Path:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{name}.json"
    data = {"scenario": name, "description": description, "asterisk": asterisk, "events": normalise(events)}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    return path


def load(name: str) -> Json:
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]
