"""The fake ARI's fixtures (tests/fixtures/ari/*.json) against the real Asterisk 22.

Each scenario is played on the real PBX with real phones through ari_app's control API,
while `ari_tap` records every event ari_app receives. The test then checks that what
Asterisk sends now still has the shape of the fixture the fake replays: each channel's event
types in order, the Stasis arguments, the hang-up causes, and the fields ari_app reads.

Refresh the fixtures (after an Asterisk upgrade, or a new scenario):

    MIS_RECORD_ARI=1 flock /tmp/mis-pbx.lock .venv/bin/pytest tests/pbx/test_ari_recordings.py

then look at `git diff tests/fixtures/ari` and run tests/ari_app (the fake reads them).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sip_phone import BaresipPhone, event_type

from ari_app.app import ThreadedApp

from .ari_tap import Tap, channel_ids, load, save, shape, tapped
from .callkit import Control, SseReader, wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, ensure_patient, wait_registered

pytestmark = pytest.mark.pbx

RECORD = os.environ.get("MIS_RECORD_ARI") == "1"
MAIN_NUMBER = "74950000000"  # the clinic's main number: every registrar's phone rings


def _ari_channels(pbx: Pbx) -> set[str]:
    cfg = pbx.config.pbx
    resp = httpx.get(f"{cfg.ari_url}/channels", auth=(cfg.ari_user, cfg.ari_password), timeout=5,
                     trust_env=False)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return {c["id"] for c in resp.json()}


def _settled(tap: Tap, pbx: Pbx) -> None:
    """Every channel of the scenario is gone and its last event has arrived: ChannelDestroyed,
    or StasisEnd for a channel Asterisk stops reporting to us when it leaves Stasis."""

    def done(events: list[dict[str, Any]]) -> bool:
        ids = channel_ids(events)
        ended = {(e.get("channel") or {}).get("id") for e in events if e["type"] == "ChannelDestroyed"}
        left = {(e.get("channel") or {}).get("id") for e in events if e["type"] == "StasisEnd"}
        if not ids or not all(cid in ended or cid in left for cid in ids):
            return False
        return not (set(ids) - ended) & _ari_channels(pbx)

    tap.wait(done, 20, "every channel of the scenario ended")


@pytest.fixture()
def rig(
    pbx: Pbx,
    phones: dict[str, BaresipPhone],
    pstn: BaresipPhone,
    ari_app: ThreadedApp,
    control: Control,
    call_users: dict[str, int],
    agi_server: Any,
) -> Iterator[dict[str, Any]]:
    wait_registered(pbx.config, {"reg101", "reg102"})
    ensure_patient(pbx)
    sse = SseReader(control, "all")
    try:
        yield {"sse": sse, "101": phones["101"], "102": phones["102"], "pstn": pstn}
    finally:
        sse.close()
        for phone in (phones["101"], phones["102"], pstn):
            phone.command("answermode", "auto")
        service = ari_app.app.service
        for uid in list(service.calls):
            control.post(call_users["admin"], f"/calls/{uid}/hangup")
        wait_until(lambda: not service.calls, 10, "all calls ended")
        wait_idle(phones["101"], phones["102"], pstn)


Scenario = Callable[[dict[str, Any], Control, dict[str, int]], None]


def _talking(rig: dict[str, Any], control: Control, actor: int, target: str = PSTN_NUMBER) -> str:
    sse: SseReader = rig["sse"]
    mark = sse.mark()
    uid = control.ok(actor, "/calls", {"target": target})["uid"]
    sse.state(uid, "talking", since=mark)
    return str(uid)


def click_to_call(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """101 calls the patient, the patient presses 5, then hangs up."""
    uid = _talking(rig, control, users["101"])
    rig["pstn"].command("sndcode", "5")
    rig["sse"].wait_for(lambda k, d: k == "dtmf" and d["uid"] == uid)
    rig["pstn"].hangup()
    rig["sse"].state(uid, "ended")


def hold_record(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """Hold, unhold, a recording started and stopped; the registrar ends the call."""
    actor = users["101"]
    uid = _talking(rig, control, actor)
    control.ok(actor, f"/calls/{uid}/hold")
    control.ok(actor, f"/calls/{uid}/unhold")
    control.ok(actor, f"/calls/{uid}/record/start")
    control.ok(actor, f"/calls/{uid}/record/stop")
    rig["sse"].wait_for(lambda k, d: k == "call" and d["uid"] == uid and not d["recording"])
    control.ok(actor, f"/calls/{uid}/hangup")


def blind_transfer(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """101 hands the patient over to 102 (blind); 102 talks, then hangs up."""
    actor = users["101"]
    uid = _talking(rig, control, actor)
    m102 = rig["102"].ctrl.mark()
    control.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "blind"})
    rig["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m102)
    rig["sse"].wait_for(lambda k, d: k == "call" and d["uid"] == uid and d["reason"] == "Переведён на 102")
    rig["102"].hangup()
    rig["sse"].state(uid, "ended")


def attended_transfer(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """101 consults 102, completes the transfer; the patient hangs up."""
    actor = users["101"]
    uid = _talking(rig, control, actor)
    control.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "attended"})
    wait_until(lambda: control.get(actor, f"/calls/{uid}").json()["transfer"]["answered"], 10, "answered")
    control.ok(actor, f"/calls/{uid}/transfer/complete")
    rig["pstn"].hangup()
    rig["sse"].state(uid, "ended")


def conference(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """102 joins 101 and the patient, leaves; 101 ends the call."""
    actor = users["101"]
    uid = _talking(rig, control, actor)
    control.ok(actor, f"/calls/{uid}/conference", {"target": "102"})
    rig["sse"].wait_for(
        lambda k, d: k == "call" and d["uid"] == uid and len(d["parties"]) == 3
        and all(p["answered"] for p in d["parties"])
    )  # fmt: skip
    rig["102"].hangup()
    rig["sse"].wait_for(lambda k, d: k == "call" and d["uid"] == uid and len(d["parties"]) == 2)
    control.ok(actor, f"/calls/{uid}/hangup")


def cancel_while_ringing(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """101 calls 102, who does not answer; 101 gives up while 102 rings."""
    actor, phone = users["101"], rig["102"]
    phone.command("answermode", "manual")
    m = phone.ctrl.mark()
    uid = control.ok(actor, "/calls", {"target": "102"})["uid"]
    phone.wait_for_event(event_type("CALL_INCOMING"), 10, m)
    control.ok(actor, f"/calls/{uid}/hangup")
    phone.wait_for_event(event_type("CALL_CLOSED"), 10, m)


def transfer_target_rings_hangup(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """Blind transfer to 102, whose phone rings; the patient hangs up before 102 answers."""
    actor, phone = users["101"], rig["102"]
    uid = _talking(rig, control, actor)
    phone.command("answermode", "manual")
    m = phone.ctrl.mark()
    control.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "blind"})
    phone.wait_for_event(event_type("CALL_INCOMING"), 10, m)
    rig["pstn"].hangup()
    rig["sse"].state(uid, "ended")
    phone.wait_for_event(event_type("CALL_CLOSED"), 10, m)


def incoming_answered(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """The patient calls 101's direct line; 101 answers; the patient hangs up."""
    mark = rig["sse"].mark()
    rig["pstn"].dial("sip:101@127.0.0.1:5060")
    talking = rig["sse"].wait_for(lambda k, d: k == "call" and d["state"] == "talking", since=mark)
    rig["pstn"].hangup()
    rig["sse"].state(talking["uid"], "ended")


def incoming_two_registrars(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """The main number rings 101 and 102 at once, both phones answer before ari_app hears of
    either answer; one keeps the call, the other's leg is hung up."""
    phones: list[BaresipPhone] = [rig["101"], rig["102"]]
    marks = []
    for phone in phones:
        phone.command("answermode", "manual")
        marks.append(phone.ctrl.mark())
    mark = rig["sse"].mark()
    rig["pstn"].dial(f"sip:{MAIN_NUMBER}@127.0.0.1:5060")
    for phone, m in zip(phones, marks, strict=True):
        phone.wait_for_event(event_type("CALL_INCOMING"), 10, m)
    with rig["tap"].held():
        for phone in phones:
            phone.command("accept")
        for phone, m in zip(phones, marks, strict=True):
            phone.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m)
    talking = rig["sse"].wait_for(lambda k, d: k == "call" and d["state"] == "talking", since=mark)
    rig["pstn"].hangup()
    rig["sse"].state(talking["uid"], "ended")


def incoming_hangup_ringing(rig: dict[str, Any], control: Control, users: dict[str, int]) -> None:
    """The patient calls 101's direct line and hangs up while it rings."""
    phone = rig["101"]
    phone.command("answermode", "manual")
    m = phone.ctrl.mark()
    mark = rig["sse"].mark()
    rig["pstn"].dial("sip:101@127.0.0.1:5060")
    phone.wait_for_event(event_type("CALL_INCOMING"), 10, m)
    rig["pstn"].hangup()
    rig["sse"].wait_for(lambda k, d: k == "call" and d["state"] == "ended", since=mark)
    phone.wait_for_event(event_type("CALL_CLOSED"), 10, m)


SCENARIOS: dict[str, Scenario] = {
    f.__name__: f
    for f in (
        click_to_call,
        hold_record,
        blind_transfer,
        attended_transfer,
        conference,
        cancel_while_ringing,
        transfer_target_rings_hangup,
        incoming_answered,
        incoming_two_registrars,
        incoming_hangup_ringing,
    )
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_asterisk_sends_what_the_fixture_holds(
    name: str, pbx: Pbx, rig: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    scenario = SCENARIOS[name]
    with tapped() as tap:
        scenario({**rig, "tap": tap}, control, call_users)
        _settled(tap, pbx)
        events = tap.snapshot()
    if RECORD:
        path = save(name, events, description=(scenario.__doc__ or "").strip(), asterisk=pbx.version)
        print(f"\n[ari] {name}: {len(events)} events -> {path}")
    fixture = load(name)
    now, kept = shape(events), shape(fixture["events"])
    assert not now["missing_fields"], now["missing_fields"]
    assert now == kept, f"Asterisk's events changed for {name}: re-record with MIS_RECORD_ARI=1"


# ERRORS keys of the fake → the request that makes Asterisk give that answer ("{bridge}": a
# bridge made for the probe). Not probed: a duplicate channel id, a channel not in a bridge
# (both need a live call).
_PROBES: dict[str, tuple[str, str, dict[str, str]]] = {
    "channel_get": ("GET", "/channels/nope", {}),
    "hangup": ("DELETE", "/channels/nope", {}),
    "answer": ("POST", "/channels/nope/answer", {}),
    "ring": ("POST", "/channels/nope/ring", {}),
    "moh_start": ("POST", "/channels/nope/moh", {}),
    "send_dtmf": ("POST", "/channels/nope/dtmf", {"dtmf": "1"}),
    "get_var": ("GET", "/channels/nope/variable", {"variable": "PATIENT_ID"}),
    "originate_originator": ("POST", "/channels", {"endpoint": "PJSIP/nobody-probe", "app": "probe",
                                                   "originator": "nope"}),  # fmt: skip
    "bridge_get": ("GET", "/bridges/nope", {}),
    "bridge_destroy": ("DELETE", "/bridges/nope", {}),
    "bridge_add_no_bridge": ("POST", "/bridges/nope/addChannel", {"channel": "nope"}),
    "bridge_add_no_channel": ("POST", "/bridges/{bridge}/addChannel", {"channel": "nope"}),
    "bridge_remove_no_channel": ("POST", "/bridges/{bridge}/removeChannel", {"channel": "nope"}),
    "bridge_record_no_bridge": ("POST", "/bridges/nope/record", {"name": "probe", "format": "wav"}),
    "recording_stop": ("POST", "/recordings/live/nope/stop", {}),
    "stored_file": ("GET", "/recordings/stored/nope/file", {}),
    "endpoint_get": ("GET", "/endpoints/PJSIP/nope", {}),
}


def _fake_errors() -> dict[str, tuple[int, str]]:
    """The fake ARI's ERRORS (tests/ari_app/fake_ari_model.py, loaded by path: `ari_app`
    here is the app)."""
    source = Path(__file__).parent.parent / "ari_app" / "fake_ari_model.py"
    spec = importlib.util.spec_from_file_location("fake_ari_model", source)
    assert spec is not None and spec.loader is not None
    fake_ari = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fake_ari_model", fake_ari)  # its dataclasses look their module up
    spec.loader.exec_module(fake_ari)
    return fake_ari.ERRORS  # type: ignore[no-any-return]


def _answers(pbx: Pbx, probes: dict[str, tuple[str, str, dict[str, str]]],
             subs: dict[str, str]) -> dict[str, tuple[int, str]]:  # fmt: skip
    cfg = pbx.config.pbx
    bridge = "probe-errors"
    real = {}
    with httpx.Client(base_url=cfg.ari_url, auth=(cfg.ari_user, cfg.ari_password), timeout=5,
                      trust_env=False) as ari:  # fmt: skip
        assert ari.post(f"/bridges/{bridge}", params={"type": "mixing"}).status_code == 200
        try:
            for key, (method, path, params) in probes.items():
                fill = {**subs, "{bridge}": bridge}
                for old, new in fill.items():
                    path = path.replace(old, new)
                    params = {k: v.replace(old, new) for k, v in params.items()}
                resp = ari.request(method, path, params=params)
                real[key] = (resp.status_code, resp.json().get("message", "") if resp.content else "")
        finally:
            ari.delete(f"/bridges/{bridge}")
    return real


def test_the_fake_answers_errors_as_asterisk_does(pbx: Pbx) -> None:
    """The fake ARI's answers for things that are gone (ERRORS in tests/ari_app/fake_ari_model.py)
    are the real Asterisk 22's, status and message."""
    errors = _fake_errors()
    assert _answers(pbx, _PROBES, {}) == {key: errors[key] for key in _PROBES}


# the same, on a live call's channel ("{chan}": the registrar's leg, in Stasis and bridged)
_LIVE_PROBES: dict[str, tuple[str, str, dict[str, str]]] = {
    # a real endpoint: Asterisk checks the id as it allocates the channel, before dialling (an
    # endpoint that does not exist fails that allocation first: 500)
    "originate_duplicate": ("POST", "/channels", {"endpoint": "PJSIP/reg102", "app": "probe",
                                                  "channelId": "{chan}"}),  # fmt: skip
    "bridge_remove_not_in_bridge": ("POST", "/bridges/{bridge}/removeChannel", {"channel": "{chan}"}),
    "get_var_unset": ("GET", "/channels/{chan}/variable", {"variable": "NO_SUCH_VARIABLE"}),
}


def test_the_fake_answers_errors_on_live_channels_as_asterisk_does(
    pbx: Pbx, rig: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    uid = _talking(rig, control, call_users["101"])
    try:
        real = _answers(pbx, _LIVE_PROBES, {"{chan}": f"{uid}-reg1"})
    finally:
        control.ok(call_users["101"], f"/calls/{uid}/hangup")
    errors = _fake_errors()
    assert real == {key: errors[key] for key in _LIVE_PROBES}
