"""Presence against the fake ARI (fake_ari_presence.py): the snapshot read at start and after
every reconnection, the live device states, a user's state made of the phones his ring
choice rings, and an event arriving while the snapshot is read winning over it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from eventskit import wait_until
from web.support import Web

from ari_app.presence.service import combine
from clinic.call_control import PresenceState
from webhooks.app import create_app

from . import harness
from .fake_ari_presence import PresenceFakeAri
from .harness import PATIENT_NUMBER, Rig, _presence_module_rig  # noqa: F401 - the fixture

Msg = dict[str, Any]


@pytest.fixture(name="r")
def _r(module_rig: Rig) -> Iterator[Rig]:
    module_rig.reset()
    fake = _fake(module_rig)
    fake.register("PJSIP/reg101")
    fake.register("PJSIP/reg102")
    module_rig.set_ring("101", "sip")
    idle = {"101": "idle", "102": "idle"}
    wait_until(lambda: module_rig.presence_states() == idle, 10, "both phones registered")
    yield module_rig


def _fake(r: Rig) -> PresenceFakeAri:
    assert isinstance(r.fake, PresenceFakeAri)
    return r.fake




def _told(stream: harness.Stream, ext: str, state: str, since: int) -> Msg:
    """The first `presence` event after `since` telling `ext`'s state is `state`."""

    def about(kind: str, data: Msg) -> bool:
        told = data["users"] if kind == "presence" else []
        return any(u["extension"] == ext and u["state"] == state for u in told)

    return stream.wait_for(about, 10, since)


def test_a_user_is_registered_if_any_phone_he_rings_is_and_busy_or_ringing_if_any_is() -> None:
    i, o, b, g = "NOT_INUSE", "UNAVAILABLE", "INUSE", "RINGING"
    assert combine([i]) is PresenceState.IDLE
    assert combine([o]) is PresenceState.OFFLINE
    assert combine([o, o]) is PresenceState.OFFLINE
    assert combine([o, i]) is PresenceState.IDLE  # the softphone is open, the desk phone is off
    assert combine([b, o]) is PresenceState.BUSY
    assert combine(["ONHOLD"]) is PresenceState.BUSY
    assert combine([i, g]) is PresenceState.RINGING
    assert combine([b, g]) is PresenceState.RINGING  # a call offered while he talks on the other
    assert combine(["INVALID"]) is PresenceState.OFFLINE  # not in Asterisk's configuration yet
    assert combine([None]) is PresenceState.UNKNOWN  # not read yet
    assert combine([None, o]) is PresenceState.UNKNOWN  # one phone unknown: cannot say «не зарегистрирован»
    assert combine(["UNKNOWN", i]) is PresenceState.IDLE


def test_snapshot_then_live_registration_with_russian_words_and_growing_seq(r: Rig) -> None:
    first = r.presence()
    assert first["available"] is True and first["epoch"]
    by_ext = {u["extension"]: u for u in first["users"]}
    assert set(by_ext) == {"101", "102"}  # the admin has no phone: not in the directory
    assert by_ext["101"]["title"] == "зарегистрирован" and by_ext["101"]["name"] == "Регистратор 101"
    assert "sip_id" not in by_ext["101"] and "devices" not in by_ext["101"]
    stream = r.stream("admin")
    mark = stream.mark()
    _fake(r).register("PJSIP/reg102", False)
    told = _told(stream, "102", "offline", mark)
    entry = next(u for u in told["users"] if u["extension"] == "102")
    assert entry["title"] == "не зарегистрирован" and entry["seq"] > by_ext["102"]["seq"]
    assert told["epoch"] == first["epoch"] and told["available"] is True
    assert r.presence_states()["102"] == "offline"
    mark = stream.mark()
    _fake(r).register("PJSIP/reg102")
    _told(stream, "102", "idle", mark)
    # every registrar's stream gets it (the directory is everyone's), not just the admin's
    other = r.stream("101")
    mark = other.mark()
    _fake(r).register("PJSIP/reg102", False)
    _told(other, "102", "offline", mark)


def test_a_call_shows_ringing_then_busy_then_registered(r: Rig) -> None:
    stream = r.stream("102")
    mark = stream.mark()
    uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    channel = r.fake.wait_channel("registrar", uid)
    told = _told(stream, "101", "ringing", mark)
    assert next(u for u in told["users"] if u["extension"] == "101")["title"] == "звонит"
    r.fake.answer(channel)
    told = _told(stream, "101", "busy", mark)
    assert next(u for u in told["users"] if u["extension"] == "101")["title"] == "занят"
    r.fake.answer(r.fake.wait_channel("remote", uid))
    r.ok(r.users["101"], f"/calls/{uid}/hangup")
    _told(stream, "101", "idle", mark)


def test_the_ring_choice_decides_which_phones_count(r: Rig) -> None:
    fake = _fake(r)
    fake.register("PJSIP/reg101", False)
    wait_until(lambda: r.presence_states()["101"] == "offline", 10, "101 offline")
    fake.register("PJSIP/reg101-web")  # his browser softphone is open, but it does not ring for him
    r.set_ring("101", "sip")
    assert r.presence_states()["101"] == "offline"
    r.set_ring("101", "both")
    wait_until(lambda: r.presence_states()["101"] == "idle", 10, "the softphone counts once it rings too")
    r.set_ring("101", "web")
    assert r.presence_states()["101"] == "idle"
    fake.register("PJSIP/reg101-web", False)
    wait_until(lambda: r.presence_states()["101"] == "offline", 10, "softphone closed")


def test_reconnection_says_unknown_then_reads_the_snapshot_again(r: Rig) -> None:
    fake = _fake(r)
    stream = r.stream("admin")
    mark = stream.mark()
    fake.drop(refuse=True)
    gone = stream.wait_for(lambda k, d: k == "presence" and d["available"] is False, 10, mark)
    assert {u["state"] for u in gone["users"]} == {"unknown"}
    assert {u["title"] for u in gone["users"]} == {"нет данных"}
    assert set(r.presence_states().values()) == {"unknown"}
    fake.register("PJSIP/reg102", False)  # while ari_app cannot hear it: no event reaches it
    subscribed = fake.mark()
    mark = stream.mark()
    fake.accept()
    back = stream.wait_for(lambda k, d: k == "presence" and d["available"] is True, 10, mark)
    assert {u["extension"]: u["state"] for u in back["users"]} == {"101": "idle", "102": "offline"}
    assert r.presence_states() == {"101": "idle", "102": "offline"}
    fake.wait_request("app_subscribe", since=subscribed, eventSource="deviceState:")  # subscribed anew


def test_an_event_that_arrives_while_the_snapshot_is_read_wins_over_it(r: Rig) -> None:
    fake = _fake(r)
    stream = r.stream("admin")
    fake.drop(refuse=True)
    stream.wait_for(lambda k, d: k == "presence" and d["available"] is False, 10)

    def ring_meanwhile(_req: Any) -> None:
        # Asterisk answers the snapshot with the state of a moment ago (idle), while the
        # event of the phone starting to ring is already on its way ahead of the answer
        fake._emit(fake.device_event("PJSIP/reg101", "RINGING"))

    fake.before("endpoints_by_tech", ring_meanwhile)
    mark = stream.mark()
    fake.accept()
    stream.wait_for(lambda k, d: k == "presence" and d["available"] is True, 10, mark)
    assert r.presence_states()["101"] == "ringing"
    mark = stream.mark()
    fake.set_device("PJSIP/reg101", "RINGING", announce=False)
    fake.set_device("PJSIP/reg101", "NOT_INUSE")
    _told(stream, "101", "idle", mark)


def test_the_web_app_gives_the_pages_ari_apps_states_with_the_colleagues_from_the_database(r: Rig) -> None:
    _fake(r).register("PJSIP/reg102", False)
    wait_until(lambda: r.presence_states()["102"] == "offline", 10, "102 offline")
    config = dataclasses.replace(r.config, pbx=dataclasses.replace(r.config.pbx, control_url=r.app.url))
    web = Web(create_app(config, session_factory=r.sessions).test_client())
    assert web.login("user101", "x" * 12).status_code == 302
    data = web.get("/phone/api/presence").get_json()
    assert data["available"] is True and data["epoch"] == r.presence()["epoch"]
    shown = {u["extension"]: (u["state"], u["title"]) for u in data["users"]}
    assert shown == {"101": ("idle", "зарегистрирован"), "102": ("offline", "не зарегистрирован")}


def test_registered_answers_from_the_events_and_says_none_when_it_cannot_tell(r: Rig) -> None:
    presence = r.app.app.service.presence

    async def ask(device: str) -> bool | None:
        return presence.registered(device)

    assert r.app.run(ask("PJSIP/reg101")) is True
    _fake(r).register("PJSIP/reg101", False)
    wait_until(lambda: r.app.run(ask("PJSIP/reg101")) is False, 10, "101 offline for reach")
    assert r.app.run(ask("PJSIP/nobody")) is None  # not one of the directory's phones
    _fake(r).drop(refuse=True)
    wait_until(lambda: r.app.run(ask("PJSIP/reg102")) is None, 10, "unknown while the socket is down")
    _fake(r).accept()
