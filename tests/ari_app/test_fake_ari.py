"""The fake ARI is only worth what it shares with Asterisk 22: the real ari_app, driven
through its control API against the fake, must get for each scenario the same events per
channel (types in order, Stasis arguments, causes) as the real Asterisk sent it in the
recording of that scenario (tests/fixtures/ari, tests/pbx/test_ari_recordings.py). And
its REST answers follow Asterisk's for things that are gone."""

from __future__ import annotations

import re

from eventskit import wait_until
from pbx.ari_tap import load, shape

from ari_app.client import OPS

from .fake_ari import ROUTES
from .harness import CLINIC_NUMBER, PATIENT_NUMBER, Rig, _module_rig, _r  # noqa: F401 - fixtures


def _same_as_recorded(r: Rig, name: str) -> None:
    r.assert_clean()
    got = shape(r.fake.sent)
    assert got == shape(load(name)["events"]), f"the fake differs from Asterisk 22 in {name}"


def test_click_to_call_as_recorded(r: Rig) -> None:
    uid, events = r.talking()
    remote = r.fake.channel_of("remote", uid)
    r.fake.send(r.fake.event_for("ChannelDtmfReceived", remote, digit="5", duration_ms=120))
    dtmf = events.wait_for(lambda k, d: k == "dtmf" and d["uid"] == uid)
    assert (dtmf["digit"], dtmf["role"]) == ("5", "remote")
    r.fake.far_hangup(remote)
    events.state(uid, "ended")
    _same_as_recorded(r, "click_to_call")


def test_hold_and_recording_as_recorded(r: Rig) -> None:
    uid, events = r.talking()
    actor = r.users["101"]
    assert r.ok(actor, f"/calls/{uid}/hold")["state"] == "held"
    remote = r.fake.channel_of("remote", uid)
    assert r.fake.call(lambda: r.fake.channels[remote].moh and r.fake.channels[remote].bridge) == f"h-{uid}"
    assert r.ok(actor, f"/calls/{uid}/unhold")["state"] == "talking"
    assert r.ok(actor, f"/calls/{uid}/record/start")["recording"] is True
    r.ok(actor, f"/calls/{uid}/record/stop")
    events.wait_for(lambda k, d: k == "call" and d["uid"] == uid and not d["recording"])
    r.ok(actor, f"/calls/{uid}/hangup")
    events.state(uid, "ended")
    _same_as_recorded(r, "hold_record")


def test_blind_transfer_as_recorded(r: Rig) -> None:
    uid, events = r.talking()
    r.ok(r.users["101"], f"/calls/{uid}/transfer", {"target": "102", "mode": "blind"})
    taker = r.stream("102")  # the call is 102's once he answers
    r.fake.answer(r.fake.wait_channel("transfer", uid))
    taker.wait_for(lambda k, d: k == "call" and d["uid"] == uid and d["state"] == "talking"
                   and d["transfer"] is None)  # fmt: skip
    r.fake.far_hangup(r.fake.channel_of("transfer", uid))
    r.ended_row(uid)
    _same_as_recorded(r, "blind_transfer")


def test_attended_transfer_as_recorded(r: Rig) -> None:
    uid, events = r.talking()
    actor = r.users["101"]
    r.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "attended"})
    r.fake.answer(r.fake.wait_channel("transfer", uid))
    events.wait_for(lambda k, d: k == "call" and d["uid"] == uid and (d["transfer"] or {}).get("answered"))
    r.ok(actor, f"/calls/{uid}/transfer/complete")
    r.fake.far_hangup(r.fake.channel_of("remote", uid))
    events.state(uid, "ended")
    _same_as_recorded(r, "attended_transfer")


def test_conference_as_recorded(r: Rig) -> None:
    uid, events = r.talking()
    actor = r.users["101"]
    r.ok(actor, f"/calls/{uid}/conference", {"target": "102"})
    third = r.fake.wait_channel("third", uid)
    r.fake.answer(third)
    events.wait_for(lambda k, d: k == "call" and d["uid"] == uid and len(d["parties"]) == 3)
    r.fake.far_hangup(third)
    events.wait_for(lambda k, d: k == "call" and d["uid"] == uid and len(d["parties"]) == 2)
    r.ok(actor, f"/calls/{uid}/hangup")
    events.state(uid, "ended")
    _same_as_recorded(r, "conference")


def test_cancel_while_ringing_as_recorded(r: Rig) -> None:
    events = r.stream("101")
    uid = r.ok(r.users["101"], "/calls", {"target": "102"})["uid"]
    r.fake.answer(r.fake.wait_channel("registrar", uid))
    r.fake.wait_channel("remote", uid)
    events.state(uid, "calling")
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    events.state(uid, "ended")
    _same_as_recorded(r, "cancel_while_ringing")


def test_transfer_target_rings_and_the_patient_hangs_up_as_recorded(r: Rig) -> None:
    uid, _events = r.talking()
    r.ok(r.users["101"], f"/calls/{uid}/transfer", {"target": "102", "mode": "blind"})
    r.fake.wait_channel("transfer", uid)
    r.fake.far_hangup(r.fake.channel_of("remote", uid))
    r.ended_row(uid)
    _same_as_recorded(r, "transfer_target_rings_hangup")


def test_incoming_hang_up_while_ringing_as_recorded(r: Rig) -> None:
    events = r.stream("101")
    r.fake.incoming("101", PATIENT_NUMBER)
    pop = events.wait_for(lambda k, d: k == "incoming")
    r.fake.wait_channel("agent")
    r.fake.far_hangup(r.fake.channel_of("inbound"))
    events.wait_for(lambda k, d: k == "incoming_end" and d["uid"] == pop["uid"])
    assert r.ended_row(pop["uid"]).result == "missed"
    _same_as_recorded(r, "incoming_hangup_ringing")


def test_incoming_answered_as_recorded(r: Rig) -> None:
    events = r.stream("101")
    r.fake.incoming("101", PATIENT_NUMBER)
    pop = events.wait_for(lambda k, d: k == "incoming")
    r.fake.answer(r.fake.wait_channel("agent"))
    events.state(pop["uid"], "talking")
    r.fake.far_hangup(r.fake.channel_of("inbound"))
    events.state(pop["uid"], "ended")
    _same_as_recorded(r, "incoming_answered")


def test_incoming_to_everyone_as_recorded(r: Rig) -> None:
    r.fake.incoming(CLINIC_NUMBER, PATIENT_NUMBER)
    uid = _incoming_uid(r)
    first, second = _agents(r, uid)
    # both in one step on the fake's loop, as the recording has it: answered one by one
    # from here, ari_app could hang up the second phone before it answers (a busy machine)
    r.fake.call(lambda: (r.fake.answer_now(first), r.fake.answer_now(second)))
    r.fake.wait(lambda: second not in r.fake.channels, 5, "the second registrar's leg hung up")
    r.fake.far_hangup(r.fake.channel_of("inbound"))
    r.ended_row(uid)
    _same_as_recorded(r, "incoming_two_registrars")


def _incoming_uid(r: Rig) -> str:
    calls = wait_until(lambda: r.calls(r.users["admin"]), 5, "the incoming call is known", step=0.01)
    return str(calls[0]["uid"])


def _agents(r: Rig, uid: str) -> tuple[str, str]:
    r.fake.wait(lambda: sum(ch.role == "agent" for ch in list(r.fake.channels.values())) == 2, 5,
                "both registrars' phones ring")  # fmt: skip
    agents = sorted(cid for cid in r.fake.live_channels() if uid in cid)
    return agents[0], agents[1]


def test_the_fake_serves_every_operation_ari_app_may_send() -> None:
    """A request ari_app learns to send (ari_app/ari/ops.py) is one the fake must answer:
    same method, same path."""
    for name, op in OPS.items():
        path = re.sub(r"\{(\w+)\}", "x", op.path)
        served = [found for method, pattern, found in ROUTES if method == op.method and pattern.match(path)]
        assert served[:1] == [name], (name, op.method, op.path, served)
