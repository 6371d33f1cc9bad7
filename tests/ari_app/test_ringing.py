"""A user's chosen phones (users.softphone_ring: his SIP phone `PJSIP/reg101`, his browser
softphone `PJSIP/reg101-web`, or both) on the real ari_app against the fake ARI: one leg per
phone, the first to answer keeps the call, the others stop ringing; the party has gone only
when the last of its phones has (core/ringing.py). Races are made, not waited for: two
answers sent in one go, a rejection while the other phone rings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from clinic.models import CallLeg, User
from clinic.softphone import RING_BOTH, RING_SIP, RING_WEB

from .harness import CLINIC_NUMBER, PATIENT_NUMBER, Rig, Stream, _module_rig, _r  # noqa: F401 - fixtures

SIP101, WEB101 = "PJSIP/reg101", "PJSIP/reg101-web"
SIP102, WEB102 = "PJSIP/reg102", "PJSIP/reg102-web"
TRUNK_PATIENT = f"PJSIP/{PATIENT_NUMBER}@trunk"


def _set_ring(r: Rig, ext: str, ring: str) -> None:
    with r.sessions() as s:
        s.scalars(select(User).where(User.extension == ext)).one().softphone_ring = ring
        s.commit()
    r.app.run(r.app.app.service.refresh_directory())


@pytest.fixture()
def rig(r: Rig) -> Iterator[Rig]:
    """Both softphones registered too; every choice back to «SIP-телефон» after."""
    r.fake.call(lambda: r.fake.endpoints.update({WEB101: "online", WEB102: "online"}))
    try:
        yield r
    finally:
        for ext in ("101", "102"):
            _set_ring(r, ext, RING_SIP)
        r.fake.call(lambda: r.fake.endpoints.update({SIP101: "online", SIP102: "online"}))


def _chan(r: Rig, role: str, endpoint: str, uid: str | None = None) -> str:
    """The live channel of this role ringing `endpoint` (of call `uid`)."""

    def find() -> str | None:
        for ch in r.fake.channels.values():
            if ch.role == role and ch.endpoint == endpoint and (uid is None or uid in ch.id):
                return ch.id
        return None

    r.fake.wait(lambda: find() is not None, 10, f"a {role} channel to {endpoint}")
    found = r.fake.call(find)
    assert found is not None
    return found


def _originated(r: Rig, since: int = 0) -> list[str]:
    return r.fake.call(
        lambda: [str(q.params.get("endpoint")) for q in r.fake.requests[since:] if q.op == "originate"]
    )


def _ring_both_101(r: Rig, dial: bool) -> tuple[Stream, str, str, str]:
    """101 rings on both phones: he clicks-to-call the patient (dial) or the patient calls
    his extension; his events, the call's uid, and his desk and browser phones' channels."""
    _set_ring(r, "101", RING_BOTH)
    events = r.stream("101")
    if dial:
        uid = r.ok(r.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
        role = "registrar"
    else:
        r.fake.incoming("101", PATIENT_NUMBER)
        uid = events.wait_for(lambda k, d: k == "incoming")["uid"]
        role = "agent"
    return events, uid, _chan(r, role, SIP101, uid), _chan(r, role, WEB101, uid)


def _102_rung_from_101s_call(r: Rig, action: str, body: dict[str, str]) -> tuple[str, Stream, str, str]:
    """101 talks to the patient and asks (transfer/conference) for 102, who rings on both phones:
    the call's uid, 101's events, 102's desk and browser phones' channels."""
    _set_ring(r, "102", RING_BOTH)
    uid, events = r.talking("101")
    r.ok(r.users["101"], f"/calls/{uid}/{action}", {"target": "102", **body})
    role = "third" if action == "conference" else "transfer"
    return uid, events, _chan(r, role, SIP102, uid), _chan(r, role, WEB102, uid)


def _remote(r: Rig, uid: str) -> str:
    """The patient's leg of click-to-call `uid`, dialled on the trunk."""
    return _chan(r, "remote", TRUNK_PATIENT, uid)


def _leg_rows(r: Rig, uid: str) -> list[tuple[str, str, bool]]:
    from clinic.models import Call

    with r.sessions() as s:
        legs = s.scalars(select(CallLeg).join(Call).where(Call.uid == uid).order_by(CallLeg.id)).all()
        return [(leg.role, leg.endpoint, leg.answered_at is not None) for leg in legs]


# ---------------------------------------------------------------------------- click-to-call


def test_ring_web_rings_only_the_softphone_and_the_call_is_his(rig: Rig) -> None:
    _set_ring(rig, "101", RING_WEB)
    events = rig.stream("101")
    uid = rig.ok(rig.users["101"], "/calls", {"target": PATIENT_NUMBER})["uid"]
    rig.fake.answer(_chan(rig, "registrar", WEB101, uid))
    rig.fake.answer(_remote(rig, uid))
    talking = events.state(uid, "talking")
    assert talking["user_id"] == rig.users["101"]
    assert [p["role"] for p in talking["parties"]] == ["registrar", "remote"]
    assert _originated(rig) == [WEB101, TRUNK_PATIENT]  # never his desk phone
    # hold and unhold work on the softphone's call as on any other
    assert rig.ok(rig.users["101"], f"/calls/{uid}/hold")["state"] == "held"
    assert rig.ok(rig.users["101"], f"/calls/{uid}/unhold")["state"] == "talking"
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    row = rig.ended_row(uid)
    assert (row.user_id, row.result) == (rig.users["101"], "answered")
    assert ("registrar", WEB101, True) in _leg_rows(rig, uid)
    rig.assert_clean()


def test_ring_both_the_first_phone_to_answer_keeps_the_call(rig: Rig) -> None:
    events, uid, sip, web = _ring_both_101(rig, dial=True)
    dialing = rig.get(rig.users["101"], f"/calls/{uid}").json()
    assert [p["role"] for p in dialing["parties"]] == ["registrar"]  # one party, two phones
    rig.fake.answer(web)
    rig.fake.wait(lambda: sip not in rig.fake.channels, 5, "the desk phone stops ringing")
    rig.fake.answer(_remote(rig, uid))
    events.state(uid, "talking")
    assert sorted(rig.fake.call(lambda: rig.fake.bridges[f"c-{uid}"].channels)) == sorted(
        [web, rig.fake.channel_of("remote", uid)]
    )
    rig.fake.far_hangup(web)
    row = rig.ended_row(uid)
    assert (row.user_id, row.result) == (rig.users["101"], "answered")
    assert row.reason == "Регистратор положил трубку"
    legs = _leg_rows(rig, uid)
    assert ("registrar", WEB101, True) in legs and ("dropped", SIP101, False) in legs
    rig.assert_clean()


def test_ring_both_both_phones_answer_at_once(rig: Rig) -> None:
    events, uid, sip, web = _ring_both_101(rig, dial=True)
    rig.fake.call(lambda: (rig.fake.answer_now(sip), rig.fake.answer_now(web)))
    rig.fake.wait(lambda: len([c for c in (sip, web) if c in rig.fake.channels]) == 1, 5,
                  "one of the two answered phones hung up")  # fmt: skip
    kept = sip if sip in rig.fake.live_channels() else web
    remote = _remote(rig, uid)
    assert len([e for e in _originated(rig) if "@trunk" in e]) == 1  # the patient is called once
    rig.fake.answer(remote)
    events.state(uid, "talking")
    assert sorted(rig.fake.call(lambda: rig.fake.bridges[f"c-{uid}"].channels)) == sorted([kept, remote])
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    assert rig.ended_row(uid).result == "answered"
    rig.assert_clean()


def test_ring_both_one_phone_rejects_the_other_still_rings_and_answers(rig: Rig) -> None:
    events, uid, sip, web = _ring_both_101(rig, dial=True)
    rig.fake.far_hangup(web, cause=21)  # «Отклонить» in the browser
    rig.fake.wait(lambda: rig.fake.sent and rig.fake.sent[-1].get("type") == "ChannelDestroyed", 5, "sent")
    assert rig.get(rig.users["101"], f"/calls/{uid}").json()["state"] == "dialing"  # the desk phone rings on
    assert sip in rig.fake.live_channels()
    rig.fake.answer(sip)
    rig.fake.answer(_remote(rig, uid))
    events.state(uid, "talking")
    assert "ended" not in [d.get("state") for k, d in events.events if d.get("uid") == uid]
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    rig.assert_clean()


def test_ring_both_busy_on_one_no_answer_on_the_other_ends_as_busy(rig: Rig) -> None:
    events, uid, sip, web = _ring_both_101(rig, dial=True)
    rig.fake.far_hangup(sip, cause=17)
    rig.fake.far_hangup(web, cause=19)
    ended = events.state(uid, "ended")
    assert ended["reason"] == "Телефон регистратора занят"  # the busy one is not hidden
    assert rig.ended_row(uid).result == "cancelled"
    assert not [e for e in _originated(rig) if "@trunk" in e]  # the patient was never called
    rig.assert_clean()


def test_softphone_offline_desk_phone_online_rings_only_the_desk_phone(rig: Rig) -> None:
    _set_ring(rig, "101", RING_BOTH)
    rig.fake.call(lambda: rig.fake.endpoints.update({WEB101: "offline"}))
    uid, _events = rig.talking("101")
    assert _originated(rig)[0] == SIP101 and WEB101 not in _originated(rig)
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    rig.assert_clean()


def test_softphone_offline_the_refusal_names_the_phone_and_nothing_is_dialled(rig: Rig) -> None:
    _set_ring(rig, "101", RING_WEB)
    rig.fake.call(lambda: rig.fake.endpoints.update({WEB101: "offline"}))
    resp = rig.post(rig.users["101"], "/calls", {"target": PATIENT_NUMBER})
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error.startswith("Ваш телефон не зарегистрирован на АТС"), error
    assert "доб. 101" in error and "Открыть софтфон" in error
    assert _originated(rig) == []
    # his desk phone being online does not count: it does not ring for him
    assert rig.fake.call(lambda: rig.fake.endpoints[SIP101]) == "online"


def test_softphone_registration_lost_between_check_and_dial_is_named(rig: Rig) -> None:
    """The endpoint goes offline after the check: Asterisk refuses the originate (500); the
    registrar is told his phone is not registered, and the call leaves no row."""
    from .fake_ari import Reply

    _set_ring(rig, "101", RING_WEB)

    def gone(_req: object) -> None:
        rig.fake.endpoints[WEB101] = "offline"
        raise Reply(500, {"message": "Allocation failed"})

    rig.fake.before("originate", gone)
    resp = rig.post(rig.users["101"], "/calls", {"target": PATIENT_NUMBER})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"].startswith("Ваш телефон не зарегистрирован на АТС")
    assert rig.calls(rig.users["101"]) == []
    rig.assert_clean()


def test_extension_target_rings_every_chosen_phone_and_one_answers(rig: Rig) -> None:
    _set_ring(rig, "102", RING_BOTH)
    events = rig.stream("101")
    uid = rig.ok(rig.users["101"], "/calls", {"target": "102"})["uid"]
    rig.fake.answer(_chan(rig, "registrar", SIP101, uid))
    sip, web = _chan(rig, "remote", SIP102, uid), _chan(rig, "remote", WEB102, uid)
    rig.fake.far_hangup(sip, cause=21)
    rig.fake.answer(web)
    events.state(uid, "talking")
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    rig.assert_clean()


def test_extension_target_with_every_phone_offline_is_refused(rig: Rig) -> None:
    _set_ring(rig, "102", RING_WEB)
    rig.fake.call(lambda: rig.fake.endpoints.update({WEB102: "offline"}))  # his desk phone is online
    resp = rig.post(rig.users["101"], "/calls", {"target": "102"})
    assert resp.status_code == 409
    assert resp.json()["error"].startswith("Телефон доб. 102 не зарегистрирован на АТС")
    assert _originated(rig) == []


# ---------------------------------------------------------------------------- incoming


def test_incoming_rings_every_chosen_phone_of_every_registrar(rig: Rig) -> None:
    _set_ring(rig, "101", RING_BOTH)
    _set_ring(rig, "102", RING_WEB)
    s101, s102 = rig.stream("101"), rig.stream("102")
    rig.fake.incoming(CLINIC_NUMBER, PATIENT_NUMBER)
    uid = s101.wait_for(lambda k, d: k == "incoming")["uid"]
    s102.wait_for(lambda k, d: k == "incoming" and d["uid"] == uid)
    sip101, web101 = _chan(rig, "agent", SIP101, uid), _chan(rig, "agent", WEB101, uid)
    web102 = _chan(rig, "agent", WEB102, uid)
    assert SIP102 not in _originated(rig)
    # 101's desk phone rejects: his browser still rings, his pop stays
    rig.fake.far_hangup(sip101, cause=21)
    rig.fake.wait(lambda: sip101 not in rig.fake.channels, 5, "rejected")
    rig.fake.answer(web101)
    talking = s101.state(uid, "talking")
    assert talking["user_id"] == rig.users["101"]
    end102 = s102.wait_for(lambda k, d: k == "incoming_end" and d["uid"] == uid)
    assert end102["reason"] == "Ответил другой регистратор"
    assert "incoming_end" not in s101.kinds(uid)  # never withdrawn from the one who answered
    rig.fake.wait(lambda: web102 not in rig.fake.channels, 5, "102's softphone stops ringing")
    rig.fake.far_hangup(rig.fake.channel_of("inbound"))
    row = rig.ended_row(uid)
    assert (row.user_id, row.result) == (rig.users["101"], "answered")
    rig.assert_clean()


def test_incoming_both_phones_of_one_registrar_answer_at_once(rig: Rig) -> None:
    s101, uid, sip, web = _ring_both_101(rig, dial=False)
    rig.fake.call(lambda: (rig.fake.answer_now(sip), rig.fake.answer_now(web)))
    s101.state(uid, "talking")
    rig.fake.wait(lambda: len([c for c in (sip, web) if c in rig.fake.channels]) == 1, 5, "one phone left")
    kept = sip if sip in rig.fake.live_channels() else web
    caller = rig.fake.channel_of("inbound")
    assert sorted(rig.fake.call(lambda: rig.fake.bridges[f"c-{uid}"].channels)) == sorted([kept, caller])
    rig.fake.far_hangup(kept)
    assert rig.ended_row(uid).result == "answered"
    rig.assert_clean()


def test_incoming_nobody_answers_either_phone_is_missed_once(rig: Rig) -> None:
    s101, uid, sip, web = _ring_both_101(rig, dial=False)
    rig.fake.far_hangup(sip, cause=19)
    rig.fake.wait(lambda: sip not in rig.fake.channels, 5, "timed out")
    assert rig.get(rig.users["admin"], f"/calls/{uid}").json()["state"] == "calling"  # still ringing
    rig.fake.far_hangup(web, cause=19)
    s101.wait_for(lambda k, d: k == "incoming_end" and d["uid"] == uid)
    row = rig.ended_row(uid)
    assert (row.result, row.user_id) == ("missed", rig.users["101"])
    assert s101.kinds(uid).count("incoming_end") == 1
    rig.assert_clean()


# ---------------------------------------------------------------------------- transfers, conference


def test_blind_transfer_to_a_softphone_extension(rig: Rig) -> None:
    _set_ring(rig, "102", RING_WEB)
    uid, _events = rig.talking("101")
    s102 = rig.stream("102")
    rig.ok(rig.users["101"], f"/calls/{uid}/transfer", {"target": "102", "mode": "blind"})
    target = _chan(rig, "transfer", WEB102, uid)
    rig.fake.answer(target)
    taken = s102.state(uid, "talking")
    assert taken["user_id"] == rig.users["102"]
    remote = rig.fake.channel_of("remote", uid)
    assert sorted(rig.fake.call(lambda: rig.fake.bridges[f"c-{uid}"].channels)) == sorted([target, remote])
    rig.fake.far_hangup(remote)
    assert rig.ended_row(uid).user_id == rig.users["102"]
    rig.assert_clean()


def _consulting(call: dict[str, object]) -> bool:
    transfer = call.get("transfer")
    return isinstance(transfer, dict) and bool(transfer.get("answered"))


def test_attended_transfer_to_both_phones_one_rejects_the_other_completes(rig: Rig) -> None:
    uid, events, sip, web = _102_rung_from_101s_call(rig, "transfer", {"mode": "attended"})
    rig.fake.far_hangup(sip, cause=21)
    rig.fake.answer(web)
    events.wait_for(lambda k, d: k == "call" and d["uid"] == uid and _consulting(d))
    done = rig.ok(rig.users["101"], f"/calls/{uid}/transfer/complete")
    assert done["state"] == "ended" or done["user_id"] == rig.users["102"]
    remote = rig.fake.channel_of("remote", uid)
    rig.fake.wait(lambda: sorted(rig.fake.bridges[f"c-{uid}"].channels) == sorted([web, remote]), 5,
                  "the patient with 102's softphone")  # fmt: skip
    rig.fake.far_hangup(web)
    assert rig.ended_row(uid).user_id == rig.users["102"]
    rig.assert_clean()


def test_attended_transfer_cancelled_stops_every_phone_of_the_target(rig: Rig) -> None:
    uid, _events, sip, web = _102_rung_from_101s_call(rig, "transfer", {"mode": "attended"})
    back = rig.ok(rig.users["101"], f"/calls/{uid}/transfer/cancel")
    assert (back["state"], back["transfer"]) == ("talking", None)
    rig.fake.wait(lambda: sip not in rig.fake.channels and web not in rig.fake.channels, 5, "both stopped")
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    rig.assert_clean()


def test_blind_transfer_nobody_answers_on_either_phone(rig: Rig) -> None:
    uid, _events, sip, web = _102_rung_from_101s_call(rig, "transfer", {"mode": "blind"})
    rig.fake.far_hangup(sip, cause=21)
    rig.fake.wait(lambda: sip not in rig.fake.channels, 5, "rejected")
    assert rig.get(rig.users["admin"], f"/calls/{uid}").json()["state"] != "ended"  # the softphone rings on
    rig.fake.far_hangup(web, cause=19)
    assert "Перевод на 102 не удался" in rig.ended_row(uid).reason
    rig.assert_clean()


def test_conference_rings_every_chosen_phone_of_the_added_party(rig: Rig) -> None:
    uid, events, sip, web = _102_rung_from_101s_call(rig, "conference", {})
    rig.fake.answer(sip)
    joined = "Участник 102 в конференции"
    events.wait_for(lambda k, d: k == "call" and d["uid"] == uid and d.get("message") == joined)
    rig.fake.wait(lambda: web not in rig.fake.channels, 5, "the softphone stops ringing")
    assert len(rig.fake.call(lambda: rig.fake.bridges[f"c-{uid}"].channels)) == 3
    rig.ok(rig.users["101"], f"/calls/{uid}/hangup")
    rig.assert_clean()


# ---------------------------------------------------------------------------- take-over


def test_a_call_from_the_softphone_is_listed_for_take_over_as_his_own(rig: Rig) -> None:
    """A call the softphone placed through the dialplan (not under ari_app's control) is the
    user's own phone's call, and nobody else's."""
    from .fake_ari_model import FakeChannel

    def place() -> None:
        mine = FakeChannel("1700000000.901", "PJSIP/reg101-web-0000abcd", "other", WEB101, state="Up")
        peer = FakeChannel("1700000000.902", "PJSIP/trunk-0000abce", "other", "PJSIP/trunk", state="Up")
        mine.dialplan = {"context": "clinic-outbound", "exten": "89161234567", "priority": 3,
                         "app_name": "Dial", "app_data": "PJSIP/89161234567@trunk"}  # fmt: skip
        mine.variables["BRIDGEPEER"] = peer.name
        rig.fake.channels.update({mine.id: mine, peer.id: peer})

    rig.fake.call(place)
    try:
        mine = rig.get(rig.users["101"], "/phone-calls").json()["calls"]
        assert [(c["channel_id"], c["peer_id"], c["number"]) for c in mine] == [
            ("1700000000.901", "1700000000.902", "89161234567")]  # fmt: skip
        assert rig.get(rig.users["102"], "/phone-calls").json()["calls"] == []
    finally:
        rig.fake.call(rig.fake.clear)
