"""Call control on the real Asterisk with real phones: registrars 101/102 (baresip) and a
patient's phone in the "telephone network" (baresip behind the clinic's trunk).

Every flow goes through the control API of the real ari_app, as the web side does, and is
checked on the phones (baresip events), in Asterisk (ARI bridges, AMI events) and in the
call log.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sip_phone import event_type
from sqlalchemy import select

from ari_app.app import ThreadedApp
from clinic.models import Call, CallLeg, CallRecording

from .callkit import AmiEvents, Control, SseReader, wait_until, wav_stats
from .pbxkit import PSTN_NUMBER, Pbx

pytestmark = pytest.mark.pbx


def _ari(pbx: Pbx, path: str) -> Any:
    cfg = pbx.config.pbx
    resp = httpx.get(
        f"{cfg.ari_url}{path}", auth=(cfg.ari_user, cfg.ari_password), timeout=5, trust_env=False
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def _bridge_parties(pbx: Pbx, uid: str) -> list[str]:
    """Channel names in the call's conversation bridge, e.g. ['PJSIP/reg101-…', 'PJSIP/trunk-…']."""
    chans = {c["id"]: c["name"] for c in _ari(pbx, "/channels")}
    return sorted(chans.get(cid, cid).split("-")[0] for cid in _ari(pbx, f"/bridges/c-{uid}")["channels"])


def _connect(
    control: Control, lines: dict[str, Any], actor: int, target: str = PSTN_NUMBER
) -> dict[str, Any]:
    sse: SseReader = lines["sse"]
    mark = sse.mark()
    call = control.ok(actor, "/calls", {"target": target})
    # the answer may already be under way when the response is written (phones auto-answer)
    assert call["state"] in ("dialing", "calling", "talking") and call["user_id"] == actor
    sse.state(call["uid"], "dialing", since=mark)  # every call starts by ringing the registrar
    talking = sse.state(call["uid"], "talking", since=mark)
    return talking


def _call_row(pbx: Pbx, uid: str) -> Call:
    row = _logged(pbx, uid)
    assert row is not None, f"call {uid} is not in the log"
    return row


def _logged(pbx: Pbx, uid: str) -> Call | None:
    """The call's row, or None while the call-log process (its writer runs at nice 19, in
    batches) has not written it yet: a predicate for wait_until."""
    with pbx.sessions() as s:
        row = s.scalars(select(Call).where(Call.uid == uid)).one_or_none()
        if row is not None:
            s.expunge(row)
        return row


def _logged_with(pbx: Pbx, uid: str, **values: object) -> bool:
    row = _logged(pbx, uid)
    return row is not None and all(getattr(row, k) == v for k, v in values.items())


def test_click_to_call_connects_and_audio_is_recorded(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    reg, pstn = lines["101"], lines["pstn"]
    m_reg, m_pstn = reg.ctrl.mark(), pstn.ctrl.mark()
    call = _connect(control, lines, call_users["101"])
    uid = call["uid"]
    print(f"\n[calls] click-to-call request -> bridged: {call['bridged_ms']:.0f} ms")
    reg.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_reg)
    est = pstn.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_pstn)
    assert "+74950000000" in est.get("peeruri", "") or est.get("peeruri")  # the clinic's caller id
    assert _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/trunk"]
    assert call["number"] == PSTN_NUMBER and call["result"] == "answered"

    rec = control.ok(call_users["101"], f"/calls/{uid}/record/start")
    assert rec["recording"] is True
    spool = pbx.config.pbx.chroot / "var/spool/asterisk/recording" / f"call-{uid}-1.wav"
    # two seconds of audio on disk (8 kHz, 16 bit), then stop
    wait_until(lambda: spool.exists() and spool.stat().st_size > 32_000, 10, "recording grows")
    control.ok(call_users["101"], f"/calls/{uid}/record/stop")
    wait_until(
        lambda: _recording(pbx, uid) is not None and _recording(pbx, uid).state == "done",
        10,
        "RecordingFinished stored",
    )
    wav = control.get(call_users["101"], f"/recordings/call-{uid}-1")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    seconds, rms, _freq = wav_stats(wav.content)
    print(f"[calls] recording: {seconds:.1f} s, RMS {rms:.0f}")
    assert seconds >= 1.5
    assert rms > 1000, "the recording is silence: no audio flowed"

    ended = control.ok(call_users["101"], f"/calls/{uid}/hangup")
    assert ended["state"] == "ended"
    reg.wait_for_event(event_type("CALL_CLOSED"), 10, m_reg)
    pstn.wait_for_event(event_type("CALL_CLOSED"), 10, m_pstn)
    row = _call_row(pbx, uid)
    assert (row.direction, row.result, row.user_id, row.number) == (
        "outbound",
        "answered",
        call_users["101"],
        PSTN_NUMBER,
    )
    assert row.answered_at is not None and row.ended_at is not None
    with pbx.sessions() as s:
        legs = s.scalars(select(CallLeg).join(Call).where(Call.uid == uid).order_by(CallLeg.id)).all()
        assert [(leg.role, leg.answered_at is not None, leg.ended_at is not None) for leg in legs] == [
            ("registrar", True, True),
            ("remote", True, True),
        ]
    again = control.post(call_users["101"], f"/calls/{uid}/hold")
    assert again.status_code == 409 and "завершён" in again.json()["error"]


def _recording(pbx: Pbx, uid: str) -> CallRecording | None:
    with pbx.sessions() as s:
        rec = s.scalars(select(CallRecording).join(Call).where(Call.uid == uid)).first()
        if rec is not None:
            s.expunge(rec)
        return rec


def test_bad_input_is_refused_before_dialing(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], ari_app: ThreadedApp
) -> None:
    before = len(_ari(pbx, "/channels"))
    cases = [
        (call_users["101"], {"target": "12-34"}, 400, "Некорректный номер"),
        (call_users["101"], {"target": "999"}, 400, "Неизвестный добавочный номер 999"),
        (call_users["101"], {"target": ""}, 400, "Не указан номер"),
        (call_users["101"], {"target": "101"}, 400, "собственный"),
        (call_users["noext"], {"target": PSTN_NUMBER}, 400, "не настроен добавочный номер"),
    ]
    for actor, body, status, text in cases:
        resp = control.post(actor, "/calls", body)
        assert resp.status_code == status, (body, resp.text)
        assert text in resp.json()["error"], resp.json()
    no_token = httpx.post(
        f"{control.url}/calls", json={"target": "102"}, headers={"X-Actor-Id": "1"}, trust_env=False
    )
    assert no_token.status_code == 401
    assert control.http.post("/calls", json={"target": "102"}).status_code == 403  # no acting user
    assert not ari_app.app.service.calls
    assert len(_ari(pbx, "/channels")) == before
    assert control.post(call_users["101"], "/calls/nope/hold").status_code == 404


def test_registrar_acts_only_on_own_calls_admin_on_all(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"])
    uid = call["uid"]
    other = control.post(call_users["102"], f"/calls/{uid}/hold")
    assert other.status_code == 403 and other.json()["error"] == "Это не ваш звонок"
    assert control.get(call_users["102"], "/calls").json()["calls"] == []
    assert [c["uid"] for c in control.get(call_users["101"], "/calls").json()["calls"]] == [uid]
    busy = control.post(call_users["101"], "/calls", {"target": "102"})
    assert busy.status_code == 409 and "Линия занята" in busy.json()["error"]
    done = control.ok(call_users["admin"], f"/calls/{uid}/hangup")
    assert done["state"] == "ended"
    assert control.post(call_users["101"], f"/calls/{uid}/unhold").status_code == 409


def test_hold_plays_music_to_the_patient_and_resume(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], ami_events: AmiEvents
) -> None:
    call = _connect(control, lines, call_users["101"])
    uid, actor = call["uid"], call_users["101"]
    mark = ami_events.mark()
    held = control.ok(actor, f"/calls/{uid}/hold")
    assert held["state"] == "held" and held["held"] is True
    moh = ami_events.wait_for(lambda e: e.get("Event") == "MusicOnHoldStart", 10, mark)
    assert moh["Channel"].startswith("PJSIP/trunk-"), moh  # the patient hears the music
    # the patient left the conversation bridge: the registrar does not hear him
    assert _bridge_parties(pbx, uid) == ["PJSIP/reg101"]
    assert control.post(actor, f"/calls/{uid}/hold").status_code == 409
    resumed = control.ok(actor, f"/calls/{uid}/unhold")
    assert resumed["state"] == "talking" and resumed["held"] is False
    ami_events.wait_for(
        lambda e: e.get("Event") == "MusicOnHoldStop" and e["Channel"] == moh["Channel"], 10, mark
    )
    assert _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/trunk"]


def test_dtmf_both_ways(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    pstn = lines["pstn"]
    actor = call_users["101"]
    sse = SseReader(control, actor)
    try:
        call = _connect(control, lines, actor)
        uid = call["uid"]
        m = pstn.ctrl.mark()
        control.ok(actor, f"/calls/{uid}/dtmf", {"digits": "7#"})
        got = [pstn.wait_for_event(event_type("CALL_DTMF_START"), 10, m)]
        got.append(pstn.wait_for_event(event_type("CALL_DTMF_START"), 10))
        assert [e.get("param") for e in got] == ["7", "#"], got
        bad = control.post(actor, f"/calls/{uid}/dtmf", {"digits": "12x"})
        assert bad.status_code == 400 and "Тоновый набор" in bad.json()["error"]
        # the patient presses 5: the registrar's window gets it
        pstn.command("sndcode", "5")
        dtmf = sse.wait_for(lambda k, d: k == "dtmf" and d["uid"] == uid)
        assert (dtmf["digit"], dtmf["role"]) == ("5", "remote")
    finally:
        sse.close()


def test_conference_has_three_parties(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"])
    uid, actor = call["uid"], call_users["101"]
    m102 = lines["102"].ctrl.mark()
    sse: SseReader = lines["sse"]
    mark = sse.mark()
    control.ok(actor, f"/calls/{uid}/conference", {"target": "102"})
    lines["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m102)
    sse.wait_for(
        lambda k, d: (
            k == "call"
            and d["uid"] == uid
            and len(d["parties"]) == 3
            and all(p["answered"] for p in d["parties"])
        ),
        since=mark,
    )
    assert _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/reg102", "PJSIP/trunk"]
    bridge = _ari(pbx, f"/bridges/c-{uid}")
    assert "dtmf_events" in bridge["bridge_class"] or bridge["technology"] == "softmix"
    # the third party leaves: the call goes on between the other two
    lines["102"].hangup()
    wait_until(lambda: _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/trunk"], 10, "third left")
    assert control.get(actor, f"/calls/{uid}").json()["state"] == "talking"


def test_conference_adds_an_outside_number_through_the_trunk(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"], target="102")  # 101 talks to 102
    uid, actor = call["uid"], call_users["101"]
    m_pstn = lines["pstn"].ctrl.mark()
    control.ok(actor, f"/calls/{uid}/conference", {"target": "8 (916) 123-45-67"})
    lines["pstn"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_pstn)
    wait_until(
        lambda: _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/reg102", "PJSIP/trunk"], 10, "three"
    )
    snapshot = control.get(actor, f"/calls/{uid}").json()
    assert PSTN_NUMBER in [p["label"] for p in snapshot["parties"]]


def test_blind_transfer_to_an_outside_number(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"], target="102")
    uid, actor = call["uid"], call_users["101"]
    m101, m_pstn = lines["101"].ctrl.mark(), lines["pstn"].ctrl.mark()
    control.ok(actor, f"/calls/{uid}/transfer", {"target": PSTN_NUMBER, "mode": "blind"})
    lines["101"].wait_for_event(event_type("CALL_CLOSED"), 10, m101)
    lines["pstn"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_pstn)
    wait_until(lambda: _bridge_parties(pbx, uid) == ["PJSIP/reg102", "PJSIP/trunk"], 10, "102 and the number")
    lines["sse"].wait_for(
        lambda k, d: k == "call" and d["uid"] == uid and d["reason"] == f"Переведён на {PSTN_NUMBER}"
    )


def test_blind_transfer_leaves_patient_with_the_target(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"])
    uid, actor = call["uid"], call_users["101"]
    m101, m102 = lines["101"].ctrl.mark(), lines["102"].ctrl.mark()
    first, taker = SseReader(control, actor), SseReader(control, call_users["102"])
    try:
        answer = control.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "blind"})
        # he has left the call: for his window it is over at once
        assert (answer["state"], answer["reason"]) == ("ended", "Переведён на 102")
        lines["101"].wait_for_event(event_type("CALL_CLOSED"), 10, m101)
        lines["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m102)
        wait_until(
            lambda: _bridge_parties(pbx, uid) == ["PJSIP/reg102", "PJSIP/trunk"], 10, "patient with 102"
        )
        lines["sse"].wait_for(
            lambda k, d: k == "call" and d["uid"] == uid and d["reason"] == "Переведён на 102"
        )
        _handed_over(pbx, control, uid, first, taker, call_users)
    finally:
        first.close()
        taker.close()
    lines["102"].hangup()
    lines["sse"].state(uid, "ended")
    # the window hears of the end before the call-log process has written it
    wait_until(lambda: _logged_with(pbx, uid, state="ended"), 10, "logged as ended")
    row = _call_row(pbx, uid)
    assert (row.result, row.reason) == ("answered", "Переведён на 102; Собеседник положил трубку")
    assert row.user_id == call_users["102"]  # in the log of the registrar who took it


def test_attended_transfer_consult_then_complete(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"])
    uid, actor = call["uid"], call_users["101"]
    m101, m102 = lines["101"].ctrl.mark(), lines["102"].ctrl.mark()
    early = control.post(actor, f"/calls/{uid}/transfer/complete")
    assert early.status_code == 409
    control.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "attended"})
    lines["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m102)
    # consultation: registrar and target talk, the patient waits on hold
    wait_until(lambda: _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/reg102"], 10, "consult")
    wait_until(
        lambda: control.get(actor, f"/calls/{uid}").json()["transfer"]["answered"], 10, "target answered"
    )
    first, taker = SseReader(control, actor), SseReader(control, call_users["102"])
    try:
        done = control.ok(actor, f"/calls/{uid}/transfer/complete")
        # the call goes on, but no longer for him: his window frees the line
        assert (done["state"], done["reason"], done["transfer"]) == ("ended", "Переведён на 102", None)
        lines["101"].wait_for_event(event_type("CALL_CLOSED"), 10, m101)
        assert _bridge_parties(pbx, uid) == ["PJSIP/reg102", "PJSIP/trunk"]
        _handed_over(pbx, control, uid, first, taker, call_users)
    finally:
        first.close()
        taker.close()
    control.ok(call_users["102"], f"/calls/{uid}/hangup")
    lines["sse"].state(uid, "ended")
    wait_until(lambda: _logged_with(pbx, uid, state="ended"), 10, "logged as ended")
    row = _call_row(pbx, uid)
    assert (row.user_id, row.reason) == (call_users["102"], "Переведён на 102; Завершён регистратором")


def _handed_over(
    pbx: Pbx, control: Control, uid: str, first: SseReader, taker: SseReader, call_users: dict[str, int]
) -> None:
    """After a transfer from 101 to 102: 101's window has the call over and why, his list no
    longer has it and he can neither end it nor send tones into it; 102's window and list
    have it, talking, and he controls it; the log already names him."""
    reg101, reg102 = call_users["101"], call_users["102"]
    gone = first.wait_for(lambda k, d: k == "call" and d["uid"] == uid and d["state"] == "ended")
    assert gone["reason"] == "Переведён на 102"
    taker.state(uid, "talking")
    assert uid not in [c["uid"] for c in control.get(reg101, "/calls").json()["calls"]]
    assert [c["state"] for c in control.get(reg102, "/calls").json()["calls"] if c["uid"] == uid] == [
        "talking"
    ]
    for path, body in (("hangup", {}), ("dtmf", {"digits": "1"}), ("hold", {})):
        refused = control.post(reg101, f"/calls/{uid}/{path}", body)
        assert (refused.status_code, refused.json()["error_id"]) == (403, "forbidden"), path
    assert control.ok(reg102, f"/calls/{uid}/dtmf", {"digits": "1"})["uid"] == uid
    wait_until(lambda: _logged_with(pbx, uid, user_id=reg102), 10, "the log names the registrar who took it")


def test_attended_transfer_cancel_returns_to_the_patient(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int]
) -> None:
    call = _connect(control, lines, call_users["101"])
    uid, actor = call["uid"], call_users["101"]
    m102 = lines["102"].ctrl.mark()
    control.ok(actor, f"/calls/{uid}/transfer", {"target": "102", "mode": "attended"})
    lines["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m102)
    wait_until(lambda: _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/reg102"], 10, "consult")
    back = control.ok(actor, f"/calls/{uid}/transfer/cancel")
    assert back["state"] == "talking"
    lines["102"].wait_for_event(event_type("CALL_CLOSED"), 10, m102)
    assert _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/trunk"]


def test_call_from_the_registrars_own_phone_is_taken_under_control(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], agi_server: Any
) -> None:
    reg, pstn = lines["101"], lines["pstn"]
    actor = call_users["101"]
    logged_before = _phone_logged(pbx)
    m_reg, m_pstn = reg.ctrl.mark(), pstn.ctrl.mark()
    reg.dial("sip:89161234567@127.0.0.1:5060")  # through the dialplan and the trunk, no ARI
    pstn.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_pstn)
    found = wait_until(lambda: control.get(actor, "/phone-calls").json()["calls"], 10, "phone call listed")
    assert len(found) == 1 and found[0]["number"].endswith("9161234567")
    assert control.get(call_users["102"], "/phone-calls").json()["calls"] == []
    taken = control.post(actor, f"/phone-calls/{found[0]['channel_id']}/adopt")
    assert taken.status_code == 201, taken.text
    uid = taken.json()["uid"]
    lines["sse"].state(uid, "talking")
    assert _bridge_parties(pbx, uid) == ["PJSIP/reg101", "PJSIP/trunk"]
    assert control.ok(actor, f"/calls/{uid}/hold")["state"] == "held"
    assert control.ok(actor, f"/calls/{uid}/unhold")["state"] == "talking"
    reg.hangup()
    pstn.wait_for_event(event_type("CALL_CLOSED"), 10, m_pstn)
    lines["sse"].state(uid, "ended")
    row = _call_row(pbx, uid)
    assert (row.origin, row.result, row.number) == ("phone", "answered", PSTN_NUMBER)
    assert reg.wait_for_event(event_type("CALL_CLOSED"), 10, m_reg)
    # the phone's channel runs its hangup handler before it is destroyed: once it is gone, a
    # second (dialplan) log row would be there; the adopted call is the app's alone
    wait_until(lambda: not _ari(pbx, "/channels"), 10, "channels destroyed")
    assert _phone_logged(pbx) == logged_before


def _phone_logged(pbx: Pbx) -> int:
    """Rows written by the dialplan's hangup handler (calls that never reached the app)."""
    with pbx.sessions() as s:
        return len(s.scalars(select(Call.id).where(Call.uid.like("p-%"))).all())
