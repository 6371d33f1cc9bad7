"""Defects found walking through registrar telephony (issue 10), on the real Asterisk with
real phones: a phone that is not registered is named before anything is dialled or logged;
a missing trunk sends a registrar to the administrator; an outbound call the registrar gives
up is «Отменён», not a missed call; a call taken over from the phone is logged from its
dialling; the screen pop shows the number grouped for reading and the appointments still
ahead on the clinic's clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sip_phone import BaresipPhone, event_type
from sqlalchemy import select

from ari_app.app import ThreadedApp
from clinic.clock import as_aware, clinic_now
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, Appointment, Call, ClinicSettings, User, utcnow

from .callkit import Control, SseReader, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, ensure_offline_user, ensure_patient

pytestmark = pytest.mark.pbx


@pytest.fixture(scope="module")
def offline(pbx: Pbx) -> int:
    """User 105: extension 105 in Asterisk's configuration, no phone ever registered."""
    return ensure_offline_user(pbx, "105")


def _channels(pbx: Pbx) -> list[dict[str, Any]]:
    cfg = pbx.config.pbx
    resp = httpx.get(
        f"{cfg.ari_url}/channels", auth=(cfg.ari_user, cfg.ari_password), timeout=5, trust_env=False
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _calls_of(pbx: Pbx, user_id: int) -> list[Call]:
    with pbx.sessions() as s:
        rows = list(s.scalars(select(Call).where(Call.user_id == user_id)))
        s.expunge_all()
        return rows


def _row(pbx: Pbx, uid: str) -> Call:
    with pbx.sessions() as s:
        row = s.scalars(select(Call).where(Call.uid == uid)).one()
        s.expunge(row)
        return row


def test_an_unregistered_own_phone_is_named_and_nothing_is_dialled_or_logged(
    pbx: Pbx, lines: dict[str, Any], control: Control, offline: int, ari_app: ThreadedApp
) -> None:
    before = len(_channels(pbx))
    resp = control.post(offline, "/calls", {"target": PSTN_NUMBER})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == (
        "Ваш телефон не зарегистрирован на АТС (доб. 105): включите телефон или проверьте его настройки"
    )
    again = control.post(offline, "/calls", {"target": "101"})  # the same for an internal call
    assert again.status_code == 409 and "не зарегистрирован на АТС (доб. 105)" in again.json()["error"]
    assert not ari_app.app.service.calls
    assert len(_channels(pbx)) == before
    assert _calls_of(pbx, offline) == []  # no «Ошибка» rows in his log for calls that never were


def test_an_unregistered_extension_is_named_before_the_registrars_phone_rings(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], offline: int
) -> None:
    actor = call_users["101"]
    logged = len(_calls_of(pbx, actor))
    m101 = lines["101"].ctrl.mark()
    resp = control.post(actor, "/calls", {"target": "105"})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"].startswith("Телефон доб. 105 не зарегистрирован на АТС")
    assert len(_calls_of(pbx, actor)) == logged
    # in a call, a conference or a transfer to 105 is refused the same way, and the call goes on
    mark = lines["sse"].mark()
    uid = control.ok(actor, "/calls", {"target": PSTN_NUMBER})["uid"]
    lines["sse"].state(uid, "talking", since=mark)
    for path, body in (("conference", {"target": "105"}), ("transfer", {"target": "105", "mode": "blind"})):
        refused = control.post(actor, f"/calls/{uid}/{path}", body)
        assert refused.status_code == 409, (path, refused.text)
        assert refused.json()["error"].startswith("Телефон доб. 105 не зарегистрирован на АТС")
    assert control.get(actor, f"/calls/{uid}").json()["state"] == "talking"
    # the only call 101's phone saw is the one to the patient
    lines["101"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m101)


def _refresh_directory(ari_app: ThreadedApp) -> None:
    """Make click-to-call re-read users and the trunk now (it caches them for 2 s)."""
    service = ari_app.app.service
    ari_app.run(service.refresh_directory())


def _set(pbx: Pbx, **changes: Any) -> None:
    with pbx.sessions() as s:
        settings = s.scalars(select(ClinicSettings)).one()
        for key, value in changes.items():
            setattr(settings, key, value)
        s.commit()


def _role(pbx: Pbx, user_id: int, role: str) -> None:
    with pbx.sessions() as s:
        s.get(User, user_id).role = role  # type: ignore[union-attr]
        s.commit()


def test_no_trunk_sends_a_registrar_to_the_administrator_and_an_admin_to_the_page(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], ari_app: ThreadedApp
) -> None:
    actor = call_users["101"]
    with pbx.sessions() as s:
        host = s.scalars(select(ClinicSettings)).one().trunk_host
    _set(pbx, trunk_host="")
    try:
        _refresh_directory(ari_app)
        resp = control.post(actor, "/calls", {"target": PSTN_NUMBER})
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert "Внешняя линия (транк) не настроена" in error and "обратитесь к администратору" in error
        assert "ЛПУ" not in error and "Параметры" not in error  # no page a registrar cannot open
        _role(pbx, actor, ROLE_ADMIN)
        _refresh_directory(ari_app)
        admin = control.post(actor, "/calls", {"target": PSTN_NUMBER}).json()["error"]
        assert "«Администрирование → Транк»" in admin
    finally:
        _role(pbx, actor, ROLE_REGISTRAR)
        _set(pbx, trunk_host=host)
        _refresh_directory(ari_app)
    assert not ari_app.app.service.calls


@pytest.fixture()
def patient_rings(lines: dict[str, Any]) -> Iterator[BaresipPhone]:
    """The patient's phone rings until someone hangs up (no auto-answer)."""
    pstn: BaresipPhone = lines["pstn"]
    pstn.command("answermode", "manual")
    try:
        yield pstn
    finally:
        pstn.command("answermode", "auto")


def test_an_outbound_call_the_registrar_gives_up_is_cancelled_not_missed(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], patient_rings: BaresipPhone
) -> None:
    actor = call_users["101"]
    m = patient_rings.ctrl.mark()
    mark = lines["sse"].mark()
    uid = control.ok(actor, "/calls", {"target": PSTN_NUMBER})["uid"]
    lines["sse"].state(uid, "calling", since=mark)
    patient_rings.wait_for_event(event_type("CALL_INCOMING"), 10, m)
    ended = control.ok(actor, f"/calls/{uid}/hangup")
    assert ended["state"] == "ended"
    patient_rings.wait_for_event(event_type("CALL_CLOSED"), 10, m)
    row = _row(pbx, uid)
    assert (row.direction, row.result, row.reason) == ("outbound", "cancelled", "Завершён регистратором")
    assert row.answered_at is None


def test_a_call_taken_over_from_the_phone_is_logged_from_its_dialling(
    pbx: Pbx, lines: dict[str, Any], control: Control, call_users: dict[str, int], agi_server: Any
) -> None:
    reg, pstn = lines["101"], lines["pstn"]
    actor = call_users["101"]
    m_pstn = pstn.ctrl.mark()
    dialled = utcnow()
    reg.dial("sip:89161234567@127.0.0.1:5060")
    pstn.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_pstn)
    found = wait_until(lambda: control.get(actor, "/phone-calls").json()["calls"], 10, "phone call listed")
    taken_over = utcnow()
    uid = control.ok(actor, f"/phone-calls/{found[0]['channel_id']}/adopt")["uid"]
    lines["sse"].state(uid, "talking")
    control.ok(actor, f"/calls/{uid}/hangup")
    lines["sse"].state(uid, "ended")
    row = _row(pbx, uid)
    started, answered = as_aware(row.started_at), as_aware(row.answered_at)  # type: ignore[arg-type]
    assert dialled - timedelta(seconds=1) <= started < taken_over, (dialled, started, taken_over)
    assert started <= answered < taken_over
    assert row.result == "answered"


@pytest.fixture()
def clinic_in_vladivostok(pbx: Pbx, server_in_new_york: None) -> Iterator[None]:
    """The clinic keeps Vladivostok time (UTC+10), the server New York's (UTC−5)."""
    with pbx.sessions() as s:
        zone = s.scalars(select(ClinicSettings)).one().timezone
    _set(pbx, timezone="Asia/Vladivostok")
    try:
        yield
    finally:
        _set(pbx, timezone=zone)


def test_screen_pop_groups_the_number_and_lists_appointments_ahead_on_the_clinics_clock(
    pbx: Pbx,
    lines: dict[str, Any],
    control: Control,
    call_users: dict[str, int],
    agi_server: Any,
    clinic_in_vladivostok: None,
) -> None:
    patient = ensure_patient(pbx)
    with pbx.sessions() as s:
        now = clinic_now(s)
        doctor = s.scalars(select(Appointment.doctor_id).where(Appointment.patient_id == patient)).first()
        # two hours ago on the clinic's clock (13 hours ahead on the server's): over
        past = Appointment(patient_id=patient, doctor_id=doctor, starts_at=now - timedelta(hours=2))
        ahead = Appointment(patient_id=patient, doctor_id=doctor, starts_at=now + timedelta(hours=2))
        s.add_all([past, ahead])
        s.commit()
        past_id, ahead_id = past.id, ahead.id
    sse = SseReader(control, call_users["101"])
    try:
        m101 = lines["101"].ctrl.mark()
        lines["pstn"].dial("sip:101@127.0.0.1:5060")
        pop = sse.wait_for(lambda k, d: k == "incoming")
        lines["101"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m101)
    finally:
        sse.close()
        lines["pstn"].hangup()
        with pbx.sessions() as s:
            for ident in (past_id, ahead_id):
                s.delete(s.get(Appointment, ident))
            s.commit()
    shown = [a["id"] for a in pop["patient"]["appointments"]]
    assert ahead_id in shown and past_id not in shown, (shown, past_id, ahead_id)
    assert (pop["number"], pop.get("number_display")) == (PSTN_NUMBER, "+7 916 123-45-67")
