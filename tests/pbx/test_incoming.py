"""Incoming calls on the real Asterisk: the patient's phone calls the clinic through the
trunk, the dialplan asks FastAGI who it is (fail-open), the ARI app rings the registrar(s)
and pops the patient card on the ringing registrar's stream only; missed calls are listed
and called back with one click."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sip_phone import BaresipPhone, event_type
from sqlalchemy import select
from web.support import Web

from ari_app.app import ThreadedApp
from asterisk_conf import apply
from clinic.models import Call, Patient, User
from clinic.services import calls as calls_svc
from webhooks.app import create_app

from .callkit import AmiEvents, Control, SseReader, wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, add_phone_user, ensure_patient, wait_registered

pytestmark = pytest.mark.pbx


@pytest.fixture(scope="module")
def patient(pbx: Pbx) -> int:
    return ensure_patient(pbx)


@pytest.fixture(scope="module")
def unreachable_registrar(pbx: Pbx) -> int:
    """User 103 has an extension but no phone registered: calls to him are never answered."""
    with pbx.sessions() as s:
        user = s.scalars(select(User).where(User.extension == "103")).first()
    if user is None:
        add_phone_user(pbx.sessions, "103", "reg103", "Pw103-secret")
        assert apply.apply_from_db(pbx.config, pbx.sessions, None).ok
        with pbx.sessions() as s:
            user = s.scalars(select(User).where(User.extension == "103")).one()
    return user.id


@pytest.fixture()
def inbound(
    pbx: Pbx,
    phones: dict[str, BaresipPhone],
    pstn: BaresipPhone,
    ari_app: ThreadedApp,
    agi_server: Any,
    control: Control,
    call_users: dict[str, int],
) -> Iterator[dict[str, Any]]:
    wait_registered(pbx.config, {"reg101", "reg102"})
    streams = {who: SseReader(control, call_users[who]) for who in ("101", "102")}
    try:
        yield streams
    finally:
        for sse in streams.values():
            sse.close()
        service = ari_app.app.service
        for uid in list(service.calls):
            control.post(call_users["admin"], f"/calls/{uid}/hangup")
        wait_until(lambda: not service.calls, 10, "all calls ended")
        wait_idle(phones["101"], phones["102"], pstn)


def _page_as(pbx: Pbx, login: str, path: str) -> str:
    """A page of the real web app as `login` (pbxkit's users) sees it."""
    web = Web(create_app(pbx.config, session_factory=pbx.sessions).test_client())
    assert web.login(login, "x" * 12).status_code == 302
    return web.text(path)


def _row(pbx: Pbx, uid: str) -> Call:
    with pbx.sessions() as s:
        row = s.scalars(select(Call).where(Call.uid == uid)).one()
        s.expunge(row)
        return row


def test_incoming_call_pops_the_card_for_the_ringing_registrar_only(
    pbx: Pbx,
    inbound: dict[str, SseReader],
    pstn: BaresipPhone,
    phones: dict[str, BaresipPhone],
    patient: int,
    ami_events: AmiEvents,
    call_users: dict[str, int],
) -> None:
    mark = ami_events.mark()
    m101 = phones["101"].ctrl.mark()
    pstn.dial("sip:101@127.0.0.1:5060")  # the clinic's DID 101: registrar 101's direct line
    pop = inbound["101"].wait_for(lambda k, d: k == "incoming")
    assert pop["patient"]["id"] == patient and pop["patient"]["name"] == "Звонков Пётр Ильич"
    assert pop["number"] == PSTN_NUMBER
    assert len(pop["patient"]["appointments"]) == 1 and pop["patient"]["appointments"][0]["doctor"]
    lookup = ami_events.wait_for(
        lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "AGI_LOOKUP", 10, mark
    )
    assert lookup["Value"] == "found"
    name = ami_events.wait_for(
        lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "PATIENT_ID", 10, mark
    )
    assert name["Value"] == str(patient)
    phones["101"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m101)
    talking = inbound["101"].wait_for(lambda k, d: k == "call" and d["state"] == "talking")
    assert talking["user_id"] == call_users["101"] and talking["direction"] == "inbound"
    # registrar 102's stream was open the whole time and saw nothing of this call (only the
    # directory's presence: colleague 101's phone ringing, then busy)
    assert not [k for k, _ in inbound["102"].events if k not in ("hello", "presence")]
    pstn.hangup()
    inbound["101"].state(talking["uid"], "ended")
    row = _row(pbx, talking["uid"])
    assert (row.direction, row.result, row.patient_id, row.user_id) == (
        "inbound",
        "answered",
        patient,
        call_users["101"],
    )


def test_with_the_agi_server_down_the_call_still_reaches_the_registrar(
    pbx: Pbx,
    inbound: dict[str, SseReader],
    pstn: BaresipPhone,
    phones: dict[str, BaresipPhone],
    patient: int,
    agi_server: Any,
    ami_events: AmiEvents,
) -> None:
    with agi_server.down():
        mark = ami_events.mark()
        m101 = phones["101"].ctrl.mark()
        pstn.dial("sip:101@127.0.0.1:5060")
        status = ami_events.wait_for(
            lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "AGISTATUS", 10, mark
        )
        assert status["Value"] == "FAILURE"  # the lookup failed open: the dialplan went on
        phones["101"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m101)
        talking = inbound["101"].wait_for(lambda k, d: k == "call" and d["state"] == "talking")
        # the ARI app found the patient itself: the card pops without the dialplan's help
        assert talking["patient_id"] == patient
        pstn.hangup()
        inbound["101"].state(talking["uid"], "ended")


def test_unknown_caller_pops_new_patient(
    pbx: Pbx, inbound: dict[str, SseReader], pstn: BaresipPhone, patient: int
) -> None:
    with pbx.sessions() as s:
        s.get(Patient, patient).phone = "+79990000000"  # type: ignore[union-attr]
        s.commit()
    try:
        pstn.dial("sip:101@127.0.0.1:5060")
        pop = inbound["101"].wait_for(lambda k, d: k == "incoming")
        assert pop["patient"] is None and pop["number"] == PSTN_NUMBER
        inbound["101"].wait_for(lambda k, d: k == "call" and d["state"] == "talking")
        pstn.hangup()
    finally:
        with pbx.sessions() as s:
            s.get(Patient, patient).phone = PSTN_NUMBER  # type: ignore[union-attr]
            s.commit()


def test_clinic_number_rings_every_registrar_and_the_first_takes_it(
    pbx: Pbx, inbound: dict[str, SseReader], pstn: BaresipPhone, patient: int
) -> None:
    pstn.dial("sip:74950000000@127.0.0.1:5060")  # the main number: everyone's phone rings
    pops = {who: inbound[who].wait_for(lambda k, d: k == "incoming") for who in ("101", "102")}
    assert pops["101"]["uid"] == pops["102"]["uid"]
    uid = pops["101"]["uid"]
    answered = wait_until(
        lambda: next(
            (
                w
                for w in ("101", "102")
                if any(
                    k == "call" and d.get("uid") == uid and d.get("state") == "talking"
                    for k, d in inbound[w].events
                )
            ),
            None,
        ),
        10,
        "someone answered",
    )
    other = "102" if answered == "101" else "101"
    end = inbound[other].wait_for(lambda k, d: k == "incoming_end" and d["uid"] == uid)
    assert end["reason"] == "Ответил другой регистратор"
    pstn.hangup()
    inbound[answered].state(uid, "ended")


def test_missed_call_is_listed_and_called_back(
    pbx: Pbx,
    inbound: dict[str, SseReader],
    pstn: BaresipPhone,
    patient: int,
    unreachable_registrar: int,
    control: Control,
    call_users: dict[str, int],
) -> None:
    sse = SseReader(control, unreachable_registrar)
    started = datetime.now().astimezone()
    try:
        pstn.dial("sip:103@127.0.0.1:5060")  # 103's phone is offline: the call is missed

        def missed_row() -> Call | None:
            with pbx.sessions() as s:
                row = s.scalars(
                    select(Call).where(
                        Call.direction == "inbound", Call.started_at >= started, Call.result == "missed"
                    )
                ).first()
                return row

        row = wait_until(missed_row, 15, "missed call in the log")
        assert row.reason == "Телефоны регистраторов недоступны"
        # a call to his own number is his: in his call log and on the patient's card
        assert row.user_id == unreachable_registrar
        mine = f'data-call-uid="{row.uid}"'
        assert mine in _page_as(pbx, "user103", "/calls")
        assert mine in _page_as(pbx, "user103", f"/patients/{patient}")
        assert mine not in _page_as(pbx, "user101", "/calls")  # nobody else's
        # a phone that never rang pops nothing (the directory's presence is not about this call)
        assert not [k for k, _ in sse.events if k not in ("hello", "presence")]
    finally:
        sse.close()
    pop = {"uid": row.uid}
    with pbx.sessions() as s:
        missed = [c.uid for c in calls_svc.missed_calls(s, None)]
    assert pop["uid"] in missed
    m = pstn.ctrl.mark()
    back = control.ok(call_users["101"], "/calls", {"target": PSTN_NUMBER, "callback_of": pop["uid"]})
    pstn.wait_for_event(event_type("CALL_ESTABLISHED"), 15, m)
    inbound["101"].state(back["uid"], "talking")
    def still_missed() -> bool:
        with pbx.sessions() as s:
            return pop["uid"] in [c.uid for c in calls_svc.missed_calls(s, None)]

    # the log follows the call's events (its writes are queued, in order)
    wait_until(lambda: not still_missed(), 10, "the missed call marked as called back")
    # who has the number is looked up as the call is logged, beside the dialling: the
    # registrar's window learns it from the event stream
    wanted = (back["uid"], patient)
    known = inbound["101"].wait_for(lambda _kind, d: (d.get("uid"), d.get("patient_id")) == wanted)
    assert known["caller_name"].startswith("Звонков")
