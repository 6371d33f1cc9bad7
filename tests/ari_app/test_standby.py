"""Browser softphones' standby lines (ari_app/standby) on the real ari_app against the fake ARI:
an idle softphone window's call to `mis-standby` is answered and kept as its ready line, and
the registrar's «Звонок» takes it as his leg instead of ringing his phones; the patient is
dialled at once and the window is told whom it talks to (CONNECTEDLINE). A line is replaced
by a newer one of the same window, forgotten when it ends, and after a reconnection the
standby channels nobody knows are hung up. Presence counts a softphone busy only with its
ready line as «зарегистрирован».

The fake is the one with device states (fake_ari_presence.py), so a line's channel makes its
softphone INUSE as in Asterisk; every test starts with 101's and 102's desk phones and
softphones registered, both ringing «SIP-телефон»."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from eventskit import wait_until
from sqlalchemy import select

from ari_app.core.call import show_number
from clinic.models import Call, CallLeg, Patient
from clinic.softphone import RING_BOTH, RING_SIP, RING_WEB

from .fake_ari_model import Request
from .fake_ari_presence import PresenceFakeAri
from .harness import PATIENT_NUMBER, Rig, Stream, _presence_module_rig  # noqa: F401 - the fixture

Msg = dict[str, Any]
SIP101, WEB101 = "PJSIP/reg101", "PJSIP/reg101-web"
SIP102, WEB102 = "PJSIP/reg102", "PJSIP/reg102-web"
PHONES = (SIP101, WEB101, SIP102, WEB102)
TRUNK_PATIENT = f"PJSIP/{PATIENT_NUMBER}@trunk"
CONNECTED_LINE = "CONNECTEDLINE(all)"


@pytest.fixture(name="r")
def _r(module_rig: Rig) -> Iterator[Rig]:
    module_rig.reset()
    for phone in PHONES:
        _fake(module_rig).register(phone)
    for ext in ("101", "102"):
        module_rig.set_ring(ext, RING_SIP)
    idle = {"101": "idle", "102": "idle"}
    wait_until(lambda: module_rig.presence_states() == idle, 10, "every phone registered")
    try:
        yield module_rig
    finally:
        # the fake's reset drops its channels without a word to ari_app: the lines still
        # open end here, as a closed window's do, so the next test starts with none
        for cid in module_rig.fake.call(lambda: [c.id for c in module_rig.fake.channels.values()
                                                 if c.role == "standby"]):  # fmt: skip
            module_rig.fake.far_hangup(cid)
        wait_until(lambda: not any(_ready(module_rig, p) for p in (WEB101, WEB102)), 10,
                   "no standby line left in ari_app")  # fmt: skip


# ---------------------------------------------------------------------------- helpers


def _fake(r: Rig) -> PresenceFakeAri:
    assert isinstance(r.fake, PresenceFakeAri)
    return r.fake




def _ready(r: Rig, endpoint: str) -> bool:
    """Whether ari_app keeps a ready (answered, unclaimed) standby line for `endpoint`."""

    async def ask() -> bool:
        return r.app.app.service.standby.only_standby(endpoint)

    return r.app.run(ask())


def _open_line(r: Rig, endpoint: str) -> str:
    """A softphone window opens its standby line and ari_app makes it ready: its channel id."""
    cid = r.fake.standby(endpoint)
    r.fake.wait_request("answer", channelId=cid)
    wait_until(lambda: _ready(r, endpoint), 10, f"the standby line of {endpoint} ready", step=0.01)
    return cid


def _requests(r: Rig, op: str, since: int = 0, **match: str) -> list[Request]:
    return r.fake.call(lambda: [q for q in r.fake.requests[since:] if q.op == op
                                and all(str(q.params.get(k)) == v for k, v in match.items())])  # fmt: skip


def _originated(r: Rig, since: int = 0) -> list[str]:
    return [str(q.params.get("endpoint")) for q in _requests(r, "originate", since)]


def _index(r: Rig, found: Request) -> int:
    return r.fake.call(lambda: next(i for i, q in enumerate(r.fake.requests) if q is found))


def _remote(r: Rig, uid: str) -> str:
    """The patient's leg of click-to-call `uid`, dialled on the trunk."""

    def find() -> str | None:
        for ch in r.fake.channels.values():
            if ch.role == "remote" and ch.endpoint == TRUNK_PATIENT and uid in ch.id:
                return ch.id
        return None

    r.fake.wait(lambda: find() is not None, 10, f"the patient's leg of {uid}")
    found = r.fake.call(find)
    assert found is not None
    return found


def _leg_rows(r: Rig, uid: str) -> list[tuple[str, str, str, bool]]:
    """(role, endpoint, channel id, answered) of the call's logged legs."""
    with r.sessions() as s:
        legs = s.scalars(select(CallLeg).join(Call).where(Call.uid == uid).order_by(CallLeg.id)).all()
        return [(leg.role, leg.endpoint, leg.channel_id, leg.answered_at is not None) for leg in legs]


def _patient_id(r: Rig) -> int:
    with r.sessions() as s:
        return s.scalars(select(Patient.id).where(Patient.phone == PATIENT_NUMBER)).one()


def _told(stream: Stream, ext: str, state: str, since: int) -> Msg:
    """The first `presence` event after `since` telling `ext`'s state is `state`."""

    def about(kind: str, data: Msg) -> bool:
        told = data["users"] if kind == "presence" else []
        return any(u["extension"] == ext and u["state"] == state for u in told)

    return stream.wait_for(about, 10, since)


def _dial_on_line(r: Rig, ext: str, line: str, **body: Any) -> tuple[str, Stream]:
    """`ext` clicks «Звонок» to the patient with his softphone's line `line` ready, and the
    patient answers: the call talks over the line. (uid, his stream)."""
    events = r.stream(ext)
    since = r.fake.mark()
    uid = r.ok(r.users[ext], "/calls", {"target": PATIENT_NUMBER, **body})["uid"]
    remote = _remote(r, uid)
    assert _originated(r, since) == [TRUNK_PATIENT]  # none of his own phones is rung
    assert _requests(r, "originate", since)[0].params.get("originator") == line
    r.fake.answer(remote)
    events.state(uid, "talking")
    assert sorted(r.fake.call(lambda: r.fake.bridges[f"c-{uid}"].channels)) == sorted([line, remote])
    return uid, events


# ---------------------------------------------------------------------------- the line itself


def test_a_softphones_standby_call_is_answered_and_kept_a_desk_phones_is_hung_up(r: Rig) -> None:
    web = r.fake.standby(WEB101)
    assert r.fake.call(lambda: r.fake.channels[web].name).startswith(WEB101 + "-")
    r.fake.wait_request("answer", channelId=web)
    wait_until(lambda: _ready(r, WEB101), 10, "the softphone's line ready", step=0.01)
    assert r.fake.call(lambda: r.fake.channels[web].state) == "Up"
    # a desk phone has no business calling mis-standby: hung up, never answered
    desk = r.fake.standby(SIP101)
    r.fake.wait_request("hangup", channelId=desk)
    r.fake.wait(lambda: desk not in r.fake.channels, 5, "the desk phone's call gone")
    assert _requests(r, "answer", channelId=desk) == []
    assert not _ready(r, SIP101)
    # the softphone's line is left alone by all this
    assert web in r.fake.live_channels() and _requests(r, "hangup", channelId=web) == []
    assert _ready(r, WEB101)


# ---------------------------------------------------------------------------- click-to-call on the line


def test_click_to_call_takes_the_ready_line_as_the_registrars_leg(r: Rig) -> None:
    r.set_ring("101", RING_WEB)
    line = _open_line(r, WEB101)
    events = r.stream("101")
    since = r.fake.mark()
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER, "patient_id": _patient_id(r)})["uid"]
    remote = _remote(r, uid)
    # his softphone is not rung: the patient is dialled at once, from the line
    assert _originated(r, since) == [TRUNK_PATIENT]
    patients = _requests(r, "originate", since)[0]
    assert patients.params.get("originator") == line
    assert not _ready(r, WEB101)  # the line is the call's now
    # the window is told whom it talks to, once the patient's leg has been asked for
    shown = r.fake.wait_request("set_var", channelId=line, variable=CONNECTED_LINE)
    assert shown.params["value"] == f'"Звонков Пётр Ильич" <{PATIENT_NUMBER}>'
    assert _index(r, shown) > _index(r, patients)
    assert len(_requests(r, "set_var", since)) == 1
    dialing = r.get(r.users["101"], f"/calls/{uid}").json()
    assert "standby" in dialing["marks"]
    # his leg up already, the patient's phone ringing
    assert dialing["state"] == "calling"
    parties = [(p["role"], p["answered"]) for p in dialing["parties"]]
    assert parties == [("registrar", True), ("remote", False)]
    r.fake.answer(remote)
    talking = events.state(uid, "talking")
    assert talking["user_id"] == r.users["101"]
    assert sorted(r.fake.call(lambda: r.fake.bridges[f"c-{uid}"].channels)) == sorted([line, remote])
    # the call's end hangs the line up: it is the call's leg
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.fake.wait_request("hangup", channelId=line)
    row = r.ended_row(uid)
    assert (row.user_id, row.result) == (r.users["101"], "answered")
    assert ("registrar", WEB101, line, True) in _leg_rows(r, uid)
    r.assert_clean()


def test_a_dialled_number_shows_its_patients_name_once_the_log_has_found_it(r: Rig) -> None:
    """«Звонок» to a number (no patient chosen): the window is told the number at once, and
    the patient's name when the call log's lookup has found whose number it is; the bridge
    join does not tell the line the patient leg's caller ID (the registrar's own number)."""
    r.set_ring("101", RING_WEB)
    line = _open_line(r, WEB101)
    since = r.fake.mark()
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    remote = _remote(r, uid)

    def told() -> list[str]:
        return [str(q.params["value"]) for q in _requests(r, "set_var", since, channelId=line)]

    wait_until(lambda: len(told()) == 2, 10, "the number, then the name", step=0.01)
    shown = show_number(PATIENT_NUMBER)  # as the windows show it: «+7 916 123-45-67»
    assert told() == [f'"{shown}" <{PATIENT_NUMBER}>', f'"Звонков Пётр Ильич" <{PATIENT_NUMBER}>']
    events = r.stream("101")
    r.fake.answer(remote)
    events.state(uid, "talking")
    joined = _requests(r, "bridge_add", since, bridgeId=f"c-{uid}")
    assert [str(q.params.get("inhibitConnectedLineUpdates")).lower() for q in joined] == ["true"]
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.ended_row(uid)


def test_the_softphone_hanging_up_its_taken_line_ends_the_call(r: Rig) -> None:
    """A line's end reaches ari_app as a StasisEnd alone (it came from the dialplan): once the
    call has it, that is the registrar hanging up."""
    r.set_ring("101", RING_WEB)
    line = _open_line(r, WEB101)
    uid, events = _dial_on_line(r, "101", line)
    r.fake.far_hangup(line)
    ended = events.state(uid, "ended")
    assert ended["reason"] == "Регистратор положил трубку"
    assert r.ended_row(uid).result == "answered"
    r.assert_clean()  # the patient hung up, the bridge gone


def test_without_a_ready_line_the_softphone_is_rung_as_before(r: Rig) -> None:
    r.set_ring("101", RING_WEB)
    events = r.stream("101")
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    registrar = r.fake.wait_channel("registrar", uid)
    assert _originated(r) == [WEB101]  # his leg first, the patient only once he answers
    r.fake.answer(registrar)
    r.fake.answer(_remote(r, uid))
    talking = events.state(uid, "talking")
    assert "standby" not in talking["marks"]
    assert _requests(r, "set_var") == []
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.assert_clean()


def test_a_line_still_being_answered_is_not_taken(r: Rig) -> None:
    """The click comes while ari_app's answer to the line is on its way: the line is not
    ready, so the softphone is rung as before; the line is ready once answered."""
    r.set_ring("101", RING_WEB)
    answering, release = threading.Event(), asyncio.Event()

    async def held(_req: Request) -> None:
        answering.set()
        await release.wait()

    r.fake.before("answer", held)
    line = r.fake.standby(WEB101)
    assert answering.wait(10), "ari_app answers the line"
    since = r.fake.mark()
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    r.fake.wait_channel("registrar", uid)
    assert _originated(r, since) == [WEB101]
    r.fake.call(release.set)
    r.fake.wait_request("answer", channelId=line)
    wait_until(lambda: _ready(r, WEB101), 10, "the line ready once answered", step=0.01)
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.fake.wait(lambda: not any(c.role == "registrar" for c in r.fake.channels.values()), 5, "the call gone")
    assert line in r.fake.live_channels() and _requests(r, "hangup", channelId=line) == []


@pytest.mark.parametrize("how", ["hung_up", "destroyed"])
def test_a_line_that_ended_before_the_click_is_forgotten(r: Rig, how: str) -> None:
    """hung_up: the window hangs its line up (Asterisk sends its StasisEnd); destroyed: a bare
    ChannelDestroyed is all ari_app hears of it."""
    r.set_ring("101", RING_WEB)
    line = _open_line(r, WEB101)
    if how == "hung_up":
        r.fake.far_hangup(line)
    else:
        destroyed = r.fake.event_for("ChannelDestroyed", line, cause=16, cause_txt="Normal Clearing")
        r.fake.call(lambda: r.fake.channels.pop(line))
        r.fake.send(destroyed)
    wait_until(lambda: not _ready(r, WEB101), 10, "the line forgotten", step=0.01)
    since = r.fake.mark()
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    r.fake.answer(r.fake.wait_channel("registrar", uid))
    _remote(r, uid)
    assert _originated(r, since) == [WEB101, TRUNK_PATIENT]
    assert _requests(r, "set_var", since) == []
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.assert_clean()


def test_ring_both_with_a_ready_line_uses_only_the_line(r: Rig) -> None:
    r.set_ring("101", RING_BOTH)
    line = _open_line(r, WEB101)
    uid, _events = _dial_on_line(r, "101", line)  # neither his desk phone nor his softphone rung
    assert SIP101 not in _originated(r) and WEB101 not in _originated(r)
    r.fake.wait_request("set_var", channelId=line, variable=CONNECTED_LINE)
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    assert [(role, endpoint) for role, endpoint, _cid, _ok in _leg_rows(r, uid)] == [
        ("registrar", WEB101), ("remote", TRUNK_PATIENT)]  # fmt: skip
    r.assert_clean()


# ---------------------------------------------------------------------------- one line per window


@pytest.mark.parametrize("timing", ["after_ready", "back_to_back"])
def test_a_newer_line_of_the_same_softphone_replaces_the_older(r: Rig, timing: str) -> None:
    """after_ready: a reloaded window opens a new line while its old one is up; back_to_back:
    both StasisStarts reach ari_app in one go, the first still being answered."""
    r.set_ring("101", RING_WEB)
    if timing == "after_ready":
        first = _open_line(r, WEB101)
        second = r.fake.standby(WEB101)
    else:
        first, second = r.fake.call(lambda: (r.fake.standby_now(WEB101), r.fake.standby_now(WEB101)))
    r.fake.wait_request("hangup", channelId=first)
    r.fake.wait(lambda: first not in r.fake.channels, 5, "the older line gone")
    r.fake.wait_request("answer", channelId=second)
    wait_until(lambda: _ready(r, WEB101), 10, "the newer line ready", step=0.01)
    assert _requests(r, "hangup", channelId=second) == []
    uid, _events = _dial_on_line(r, "101", second)
    r.fake.wait_request("set_var", channelId=second, variable=CONNECTED_LINE)
    assert _requests(r, "set_var", channelId=first) == []
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.assert_clean()


# ---------------------------------------------------------------------------- reconnection


def test_reconnection_hangs_up_unknown_lines_and_keeps_its_own(r: Rig) -> None:
    r.set_ring("101", RING_WEB)
    r.set_ring("102", RING_WEB)
    taken = _open_line(r, WEB102)
    call102, _s102 = _dial_on_line(r, "102", taken)  # a line a call has: tracked by the call
    kept = _open_line(r, WEB101)
    # a window's line answered by an ari_app before this one (restarted meanwhile)
    unknown = r.fake.standby("PJSIP/reg103-web", earlier_app=True)
    since = r.fake.mark()
    before = r.health()["resyncs"]
    r.fake.drop()
    r.wait_connected(resyncs=before + 1)
    r.fake.wait_request("hangup", since=since, channelId=unknown)
    r.fake.wait(lambda: unknown not in r.fake.channels, 5, "the unknown line gone")
    assert {str(q.params.get("channelId")) for q in _requests(r, "hangup", since)} == {unknown}
    assert r.get(r.users["102"], f"/calls/{call102}").json()["state"] == "talking"
    # the known line is still 101's to use
    assert kept in r.fake.live_channels() and _ready(r, WEB101)
    uid, _events = _dial_on_line(r, "101", kept)
    for uid_ in (uid, call102):
        r.ok(r.users["admin"], f"/calls/{uid_}/hangup")
    r.assert_clean()


def test_reconnection_forgets_a_line_whose_channel_went_meanwhile(r: Rig) -> None:
    r.set_ring("101", RING_WEB)
    line = _open_line(r, WEB101)
    before = r.health()["resyncs"]
    r.fake.drop(refuse=True)
    wait_until(lambda: not r.health()["ari_connected"], 5, "ari_app saw the drop", step=0.01)
    r.fake.call(lambda: r.fake.channels.pop(line))  # the window closed: nobody heard it
    r.fake.accept()
    r.wait_connected(resyncs=before + 1)
    wait_until(lambda: not _ready(r, WEB101), 10, "the line forgotten", step=0.01)
    since = r.fake.mark()
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    r.fake.wait_channel("registrar", uid)
    assert _originated(r, since) == [WEB101]
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    r.assert_clean()


# ---------------------------------------------------------------------------- presence


def test_presence_a_ready_line_is_registered_a_taken_one_busy(r: Rig) -> None:
    r.set_ring("101", RING_WEB)
    stream = r.stream("admin")
    line = _open_line(r, WEB101)
    # Asterisk counts the softphone in use (its line is up), and ari_app has heard so
    r.fake.wait(lambda: _fake(r).device_states.get(WEB101) == "INUSE", 5, "the softphone INUSE")

    async def heard() -> str | None:
        return r.app.app.service.presence.devices.get(WEB101)

    wait_until(lambda: r.app.run(heard()) == "INUSE", 10, "ari_app heard INUSE", step=0.01)
    entry = next(u for u in r.presence()["users"] if u["extension"] == "101")
    assert (entry["state"], entry["title"]) == ("idle", "зарегистрирован")
    # the line taken by a call: «занят», though the device state has not changed
    mark = stream.mark()
    sent = r.fake.call(lambda: len(r.fake.sent))
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    # at once, as the call takes the line: not at presence's next reading of the users
    assert r.presence_states()["101"] == "busy"
    told = _told(stream, "101", "busy", mark)
    assert next(u for u in told["users"] if u["extension"] == "101")["title"] == "занят"
    device_events = r.fake.call(
        lambda: [e for e in r.fake.sent[sent:] if e.get("type") == "DeviceStateChanged"]
    )
    assert [e for e in device_events if e["device_state"]["name"] == WEB101] == []
    r.fake.wait_request("set_var", channelId=line)  # it was the line that the call took
    # the call's end hangs the line up: the softphone is free again
    mark = stream.mark()
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    _told(stream, "101", "idle", mark)
    r.assert_clean()
