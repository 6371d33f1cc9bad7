"""ari_app rings the phone each user chose, on the real Asterisk 22 with real phones and
Debian's chromium as the browser softphone (fake microphone: a 1000 Hz tone):

- user 108 («Встроенный софтфон», no desk phone) presses «Звонок» in «Прием по телефону»
  to the patient behind the trunk: his idle window's standby line (ari_app/standby) is his
  leg, up already (nothing rings, nothing is originated to the browser; the window learns
  whom it talks to from the connected line), both hear each other (the browser's inbound
  audio energy; the patient's baresip records the browser's tone, measured by sox), and the
  window opens a new line after the call; while the line waits, his presence is
  «зарегистрирован». Without a line (the window just had a call, or it is switched off) the
  browser answers its own callback leg by itself (ari_app marks it `Call-Info:
  …;answer-after=0`; no ring, no «Говорить»); «Удержание» gives the patient music on hold;
  a desk phone calling the standby extension is hung up;
- a patient calling 108 rings the browser until «Говорить»; a «Звонок» while the window is
  on another call waits as a second call (not answered over it); a «Оба» user's «Звонок»
  sends the header to the browser's leg only, the browser takes the call, the desk phone stops;
- user 101 («Оба»: his baresip desk phone and his browser) gets an incoming call: both ring,
  the first to answer takes it, the other stops ringing;
- a call transferred to extension 108 rings his browser, and the call becomes his.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sip_phone import BaresipPhone, event_type
from sqlalchemy import select

from ari_app.app import ThreadedApp
from clinic import ami
from clinic.models import Call, CallLeg, User
from clinic.softphone import RING_BOTH, RING_SIP, RING_WEB, STANDBY_EXTEN

from .callkit import AmiEvents, Control, wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, add_phone_user, ensure_patient, serve_web, wait_registered
from .softphonekit import (
    TONE_HZ,
    RecordingPhone,
    heard_tone,
    hears,
    login,
    media_browser,
    no_channels,
    only_standby_lines,
    open_softphone,
    recording_instead,
    set_ring,
    standby_lines,
    standby_ready,
    stats,
)

pytestmark = [pytest.mark.pbx, pytest.mark.browser]
WEB_EXT, WEB_SIP = "108", "reg108"  # a registrar with only a headset and a browser
PATIENT_NAME = "Звонков Пётр Ильич"  # pbxkit.ensure_patient's, behind PSTN_NUMBER


@pytest.fixture(scope="module")
def web_user(pbx: Pbx, ari_app: ThreadedApp) -> int:
    with pbx.sessions() as s:
        found = s.scalar(select(User.id).where(User.sip_id == WEB_SIP))
    if found is None:
        add_phone_user(pbx.sessions, WEB_EXT, WEB_SIP, "Pw108-secret")
    set_ring(pbx, WEB_SIP, RING_WEB)
    assert set_ring(pbx, WEB_SIP, RING_WEB) is False
    _refresh(ari_app)
    with pbx.sessions() as s:
        return int(s.scalars(select(User.id).where(User.sip_id == WEB_SIP)).one())


def _refresh(ari_app: ThreadedApp) -> None:
    """ari_app reads users now (its directory is cached for a couple of seconds)."""
    ari_app.run(ari_app.app.service.refresh_directory())


@pytest.fixture(scope="module")
def web(pbx: Pbx, ari_app: ThreadedApp, agi_server: Any) -> Iterator[str]:
    """The web app talking to the real ari_app (as tests/pbx/test_phone_browser.py has it)."""
    with serve_web(pbx, ari_app) as origin:
        yield origin


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with media_browser(tmp_path_factory.mktemp("media")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def patient(pstn: BaresipPhone, pbx: Pbx) -> Iterator[RecordingPhone]:
    """The patient's phone behind the trunk, recording what it hears."""
    ensure_patient(pbx)
    with recording_instead(pstn) as phone:
        yield phone


@pytest.fixture()
def idle(
    pbx: Pbx, phones: dict[str, BaresipPhone], patient: RecordingPhone, ari_app: ThreadedApp,
    control: Control, call_users: dict[str, int], web_user: int,
) -> Iterator[None]:  # fmt: skip
    """Phones registered before; every call hung up, the phones idle and no channel left after."""
    wait_registered(pbx.config, {"reg101", "reg102"})
    yield
    service = ari_app.app.service
    for uid in list(service.calls):
        control.post(call_users["admin"], f"/calls/{uid}/hangup")
    wait_until(lambda: not service.calls, 10, "all calls ended")
    wait_idle(phones["101"], phones["102"], patient)
    no_channels(pbx)


@dataclasses.dataclass
class Desk:
    """One registrar's browser: «Прием по телефону» and the softphone window opened from it."""

    main: Any
    phone: Any


@pytest.fixture()
def desk_of(browser: Any, web: str, pbx: Pbx) -> Iterator[Any]:
    contexts = []

    def open_as(login_name: str, sip_id: str) -> Desk:
        context = browser.new_context(locale="ru-RU", timezone_id="Europe/Moscow")
        context.set_default_timeout(15_000)
        contexts.append(context)
        main = login(context, web, login_name)
        expect(main.locator("body")).to_have_attribute("data-phone-events", "on")  # the stream is open
        phone = open_softphone(main)
        wait_registered(pbx.config, {f"{sip_id}-web"})
        return Desk(main, phone)

    yield open_as
    for context in contexts:
        context.close()  # the softphone unregisters, ending any call it had


def _call_row(pbx: Pbx, number: str) -> tuple[Call, list[str]]:
    """The latest call with `number` once the log has it ended, and its legs' endpoints."""

    def ended() -> tuple[Call, list[str]] | None:
        with pbx.sessions() as s:
            row = s.scalars(select(Call).where(Call.number == number).order_by(Call.id.desc())).first()
            if row is None or row.state != "ended":
                return None
            legs = [leg.endpoint for leg in s.scalars(select(CallLeg).where(CallLeg.call_id == row.id)).all()]
            s.expunge(row)
            return row, legs

    found = wait_until(ended, 10, f"the call to {number} ended in the log")
    assert found is not None
    return found  # type: ignore[no-any-return]


# JS: every state the softphone window's call line shows, and whether it ever rang, from now on
WATCH_STATES = """() => {
  const el = document.querySelector('[data-testid="sp-call-state"]');
  const ring = document.querySelector('[data-testid="sp-ring-audio"]');
  window.__seen = [el.textContent];
  window.__rang = false;
  new MutationObserver(() => {
    if (window.__seen[window.__seen.length - 1] !== el.textContent) window.__seen.push(el.textContent);
    if (ring.dataset.ringing === '1') window.__rang = true;
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _seen(page: Any) -> tuple[list[str], bool]:
    """The call line's states since WATCH_STATES, and whether the window rang meanwhile."""
    return page.evaluate("() => [window.__seen, window.__rang]")  # type: ignore[no-any-return]


def _dial_from_the_window(
    desk: Desk, patient: RecordingPhone, number: str = PSTN_NUMBER, *, standby: bool = True
) -> None:
    """«Звонок» in «Прием по телефону»: the window's standby line is his leg (`standby`), or
    the softphone answers its own callback leg by itself; either way no ring and no
    «Говорить»; the patient's phone answers (baresip auto-answers), «Разговор»."""
    mark = patient.ctrl.mark()
    desk.phone.evaluate(WATCH_STATES)
    desk.main.get_by_test_id("phone-number").fill(number)
    desk.main.get_by_test_id("btn-dial").click()
    patient.wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark)
    expect(desk.main.get_by_test_id("line-state")).to_have_attribute("data-state", "talking")
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    seen, rang = _seen(desk.phone)
    assert "Входящий звонок" not in seen and not rang, seen  # answered at once, never rang
    if standby:
        assert seen == ["Свободна", "Разговор"], seen  # his leg was up before he pressed
        # whom the line talks to: Asterisk's connected line (UPDATE, P-Asserted-Identity): the
        # number, then whose it is once the call log has looked it up
        expect(desk.phone.get_by_test_id("sp-peer")).to_have_text(PATIENT_NAME)
    else:
        assert "Соединение…" in seen, seen  # shown as the call in progress from its first moment


def _standby(desk: Desk, on: bool) -> None:
    desk.phone.evaluate("on => window.misSoftphoneUseStandby(on)", on)
    if on:
        standby_ready(desk.phone)


def test_click_to_call_takes_the_windows_standby_line_and_both_parties_hear_each_other(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx, web_user: int, ari_app: ThreadedApp,
    originated: list[tuple[str, dict[str, str] | None]],
) -> None:  # fmt: skip
    desk = desk_of(f"user{WEB_EXT}", WEB_SIP)
    only_standby_lines(pbx, 1)  # the idle window's line waits in Asterisk
    own = desk.main.get_by_test_id("own-presence")
    expect(own).to_have_text("зарегистрирован")  # a waiting line is not a call
    claimed = ari_app.app.service.standby.claimed
    _dial_from_the_window(desk, patient)
    assert ari_app.app.service.standby.claimed == claimed + 1
    assert f"PJSIP/{WEB_SIP}-web" not in [endpoint for endpoint, _ in originated]  # nothing rang
    expect(own).to_have_text("занят")
    hears(desk.phone, "the browser hears the patient")
    wait_until(lambda: (stats(desk.phone).get("outPackets") or 0) > 200, 15, "four seconds of audio sent")
    recording = patient.last_recording()
    wait_until(lambda: recording.stat().st_size > 44 + 16000 * 3, 10, "three seconds recorded by the patient")
    desk.main.get_by_test_id("btn-hangup").click()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    only_standby_lines(pbx, 1)  # the call's channels gone, the window's next line up
    standby_ready(desk.phone)
    expect(own).to_have_text("зарегистрирован")
    heard = heard_tone(recording)
    assert abs(heard["Rough   frequency"] - TONE_HZ) < 60, heard  # the browser's microphone
    assert heard["RMS     amplitude"] > 0.05, heard
    row, legs = _call_row(pbx, PSTN_NUMBER)
    assert (row.user_id, row.result, row.direction) == (web_user, "answered", "outbound")
    assert f"PJSIP/{WEB_SIP}-web" in legs and f"PJSIP/{WEB_SIP}" not in legs


def test_click_to_call_without_a_standby_line_rings_the_window_which_answers_by_itself(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx,
    originated: list[tuple[str, dict[str, str] | None]],
) -> None:  # fmt: skip
    desk = desk_of(f"user{WEB_EXT}", WEB_SIP)
    _standby(desk, False)
    only_standby_lines(pbx, 0)  # the window hung its line up
    _dial_from_the_window(desk, patient, standby=False)
    mine = dict(e for e in originated if e[0] == f"PJSIP/{WEB_SIP}-web")
    assert "answer-after=0" in (mine[f"PJSIP/{WEB_SIP}-web"] or {}).get("PJSIP_HEADER(add,Call-Info)", "")
    hears(desk.phone, "the browser hears the patient")
    desk.main.get_by_test_id("btn-hangup").click()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    only_standby_lines(pbx, 0)  # switched off, the window opens no line after the call
    _standby(desk, True)


def test_a_desk_phone_calling_the_standby_extension_is_hung_up(
    idle: None, phones: dict[str, BaresipPhone], pbx: Pbx, ari_app: ThreadedApp
) -> None:
    """Only a browser softphone may keep a standby line: anything else dialling it is hung up
    (and never becomes a registrar's leg)."""
    phone = phones["102"]
    mark = phone.ctrl.mark()
    phone.dial(f"sip:{STANDBY_EXTEN}@127.0.0.1:5060")
    phone.wait_for_event(event_type("CALL_CLOSED"), 10, mark)
    assert not ari_app.app.service.standby.lines
    no_channels(pbx)


def test_hold_from_the_window_plays_music_to_the_patient(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx, ami_events: AmiEvents
) -> None:
    desk = desk_of(f"user{WEB_EXT}", WEB_SIP)
    _dial_from_the_window(desk, patient)
    mark = ami_events.mark()
    desk.main.get_by_test_id("btn-hold").click()
    expect(desk.main.get_by_test_id("line-state")).to_have_attribute("data-state", "held")
    moh = ami_events.wait_for(lambda e: e.get("Event") == "MusicOnHoldStart", 10, mark)
    assert moh["Channel"].startswith("PJSIP/trunk-"), moh  # the patient hears the music
    desk.main.get_by_test_id("btn-talk").click()  # «Говорить»: back to the conversation
    expect(desk.main.get_by_test_id("line-state")).to_have_attribute("data-state", "talking")
    stopped = ami_events.wait_for(lambda e: e.get("Event") == "MusicOnHoldStop", 10, mark)
    assert stopped["Channel"] == moh["Channel"]
    before = stats(desk.phone)["inPackets"]
    wait_until(lambda: stats(desk.phone)["inPackets"] > before + 50, 10, "the patient heard again")
    desk.main.get_by_test_id("btn-hangup").click()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))


@pytest.fixture()
def ring_both_101(pbx: Pbx, ari_app: ThreadedApp, phones: dict[str, BaresipPhone]) -> Iterator[BaresipPhone]:
    """User 101 has «Оба»; his desk phone answers only when told to (not by itself)."""
    set_ring(pbx, "reg101", RING_BOTH)
    _refresh(ari_app)
    phones["101"].command("answermode", "manual")
    try:
        yield phones["101"]
    finally:
        phones["101"].command("answermode", "auto")
        set_ring(pbx, "reg101", RING_SIP)
        _refresh(ari_app)


@pytest.mark.parametrize("first", ["browser", "desk phone"])
def test_incoming_call_rings_both_phones_and_the_first_to_answer_takes_it(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx, ring_both_101: BaresipPhone,
    call_users: dict[str, int], first: str,
) -> None:  # fmt: skip
    desk = desk_of("user101", "reg101")
    desk_phone = ring_both_101
    m_desk, m_patient = desk_phone.ctrl.mark(), patient.ctrl.mark()
    patient.dial("sip:101@127.0.0.1:5060")
    desk_phone.wait_for_event(event_type("CALL_INCOMING"), 15, m_desk)  # both ring
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Входящий звонок")
    expect(desk.main.get_by_test_id("call-pop")).to_be_visible()  # the screen pop beside them
    if first == "browser":
        desk.phone.get_by_test_id("sp-answer").click()
        desk_phone.wait_for_event(event_type("CALL_CLOSED"), 10, m_desk)  # the desk phone stops
        patient.wait_for_event(event_type("CALL_ESTABLISHED"), 15, m_patient)
        expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
        hears(desk.phone, "the browser hears the caller")
        taken_by = "PJSIP/reg101-web"
    else:
        desk_phone.command("accept")
        desk_phone.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_desk)
        # the browser stops ringing and stays free
        expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
        expect(desk.phone.get_by_test_id("sp-ring-audio")).to_have_attribute("data-ringing", "")
        taken_by = "PJSIP/reg101"
    expect(desk.main.get_by_test_id("line-state")).to_have_attribute("data-state", "talking")
    patient.hangup()
    expect(desk.main.get_by_test_id("line-state")).to_have_text("Свободна")
    row, legs = _call_row(pbx, PSTN_NUMBER)
    assert (row.direction, row.user_id, row.result) == ("inbound", call_users["101"], "answered")
    assert taken_by in legs


def test_blind_transfer_to_a_softphone_extension_rings_the_browser(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx, control: Control,
    call_users: dict[str, int], web_user: int,
) -> None:  # fmt: skip
    desk = desk_of(f"user{WEB_EXT}", WEB_SIP)
    actor = call_users["101"]  # his desk phone (baresip) answers by itself
    m_patient = patient.ctrl.mark()
    uid = control.ok(actor, "/calls", {"target": PSTN_NUMBER})["uid"]
    patient.wait_for_event(event_type("CALL_ESTABLISHED"), 15, m_patient)
    wait_until(lambda: control.get(actor, f"/calls/{uid}").json()["state"] == "talking", 10, "talking")
    control.ok(actor, f"/calls/{uid}/transfer", {"target": WEB_EXT, "mode": "blind"})
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Входящий звонок")
    desk.phone.get_by_test_id("sp-answer").click()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    # the call is 108's now: his window shows it, and he hears the patient
    expect(desk.main.get_by_test_id("line-state")).to_have_attribute("data-state", "talking")
    hears(desk.phone, "the browser hears the transferred patient")
    assert control.get(web_user, f"/calls/{uid}").json()["user_id"] == web_user
    desk.main.get_by_test_id("btn-hangup").click()
    patient.wait_for_event(event_type("CALL_CLOSED"), 10, m_patient)
    row, legs = _call_row(pbx, PSTN_NUMBER)
    assert (row.uid, row.user_id, row.result) == (uid, web_user, "answered")
    assert f"PJSIP/{WEB_SIP}-web" in legs


def _web_contacts(pbx: Pbx, sip_id: str) -> list[str]:
    contacts = ami.run(pbx.config.pbx, lambda c: c.contacts())
    return [c["Uri"] for c in contacts if (c.get("Endpoint") or c.get("AOR")) == f"{sip_id}-web"]


def test_a_second_computer_of_the_same_user_waits_instead_of_taking_the_registration(
    idle: None, desk_of: Any, browser: Any, web: str, pbx: Pbx
) -> None:
    """Two browsers (two computers) logged in as 108: the first keeps the one registration
    (no flapping between them); the second says why and takes over when the first closes."""
    first = desk_of(f"user{WEB_EXT}", WEB_SIP)
    held = _web_contacts(pbx, WEB_SIP)
    assert len(held) == 1, held
    other = browser.new_context(locale="ru-RU")
    other.set_default_timeout(15_000)
    try:
        second = login(other, web, f"user{WEB_EXT}", "/phone/softphone")
        state = second.get_by_test_id("softphone-state")
        expect(state).to_have_attribute("data-state", "elsewhere")
        expect(state).to_contain_text("Софтфон уже подключён на другом компьютере")
        expect(second.get_by_test_id("sp-dial")).to_be_disabled()
        # the server refuses a bad window id in Russian, and a lease held by another window
        answers = second.evaluate("""async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const post = body => fetch('/phone/api/softphone/lease', {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf}, body: JSON.stringify(body)})
              .then(async r => [r.status, await r.json()]);
            return [await post({instance: 1}), await post({instance: 'another-window-0001'})];
        }""")
        assert answers[0][0] == 400 and "идентификатора" in answers[0][1]["error"]
        assert answers[1][0] == 409 and answers[1][1]["elsewhere"] is True
        assert _web_contacts(pbx, WEB_SIP) == held  # the first computer's registration stands
        expect(first.phone.get_by_test_id("softphone-state")).to_have_text("Софтфон подключён")
        first.phone.context.close()  # the first computer closes its softphone (it releases)
        expect(state).to_have_text("Софтфон подключён", timeout=20_000)
        wait_until(lambda: len(_web_contacts(pbx, WEB_SIP)) == 1 and _web_contacts(pbx, WEB_SIP) != held, 10,
                   "the second computer registered")  # fmt: skip
    finally:
        other.close()


def test_incoming_call_to_a_softphone_user_rings_and_waits_for_govorit(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx, web_user: int
) -> None:
    """Only the registrar's own click-to-call leg is answered by itself: a patient calling
    108 rings the browser until «Говорить»."""
    desk = desk_of(f"user{WEB_EXT}", WEB_SIP)
    m_patient = patient.ctrl.mark()
    patient.dial(f"sip:{WEB_EXT}@127.0.0.1:5060")
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Входящий звонок")
    expect(desk.phone.get_by_test_id("sp-ring-audio")).to_have_attribute("data-ringing", "1")
    # a call rings the window: its standby line is hung up (the phone is in use)
    wait_until(lambda: not any(ext == STANDBY_EXTEN for _, ext, _, _ in standby_lines(pbx)), 10,
               "the standby line hung up")  # fmt: skip
    expect(desk.phone.get_by_test_id("sp-answer")).to_be_enabled()
    established = [e for e in patient.ctrl.events[m_patient:] if e.get("type") == "CALL_ESTABLISHED"]
    assert not established  # ringing, not answered
    desk.phone.get_by_test_id("sp-answer").click()
    patient.wait_for_event(event_type("CALL_ESTABLISHED"), 15, m_patient)
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    hears(desk.phone, "the browser hears the caller")
    patient.hangup()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    only_standby_lines(pbx, 1)  # idle again: a new line
    row, legs = _call_row(pbx, PSTN_NUMBER)
    assert (row.direction, row.user_id, row.result) == ("inbound", web_user, "answered")


def test_click_to_call_during_another_call_rings_as_call_waiting(
    idle: None, desk_of: Any, patient: RecordingPhone, phones: dict[str, BaresipPhone], pbx: Pbx
) -> None:
    """The softphone already talks (to extension 102, dialled in the window): the callback
    leg of a «Звонок» is not answered over it; it waits as a second call, and the patient is
    not dialled."""
    desk = desk_of(f"user{WEB_EXT}", WEB_SIP)
    m_102, m_patient = phones["102"].ctrl.mark(), patient.ctrl.mark()
    desk.phone.get_by_test_id("sp-number").fill("102")
    desk.phone.get_by_test_id("sp-dial").click()
    phones["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 15, m_102)  # baresip answers
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    desk.main.get_by_test_id("phone-number").fill(PSTN_NUMBER)
    desk.main.get_by_test_id("btn-dial").click()
    waiting = desk.phone.get_by_test_id("sp-waiting")
    expect(waiting).to_contain_text("Второй входящий звонок")
    expect(desk.phone.get_by_test_id("sp-ring-audio")).to_have_attribute("data-ringing", "1")
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")  # the first call goes on
    expect(desk.main.get_by_test_id("line-state")).not_to_have_attribute("data-state", "talking")
    assert not [e for e in patient.ctrl.events[m_patient:] if e.get("type") == "CALL_INCOMING"]
    desk.main.get_by_test_id("btn-hangup").click()  # the registrar gives up the «Звонок»
    expect(waiting).to_be_hidden()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    desk.phone.get_by_test_id("sp-hangup").click()
    phones["102"].wait_for_event(event_type("CALL_CLOSED"), 10, m_102)
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))


@pytest.fixture()
def originated(ari_app: ThreadedApp) -> Iterator[list[tuple[str, dict[str, str] | None]]]:
    """(endpoint, channel variables) of every originate ari_app sends to Asterisk meanwhile
    (the real request goes on unchanged)."""
    ari = ari_app.app.ari
    sent: list[tuple[str, dict[str, str] | None]] = []
    real = ari.originate

    async def originate(endpoint: str, **kwargs: Any) -> Any:
        sent.append((endpoint, kwargs.get("variables")))
        return await real(endpoint, **kwargs)

    ari.originate = originate  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del ari.originate


@pytest.mark.parametrize("standby", [True, False], ids=["standby line", "no standby line"])
def test_click_to_call_of_a_both_user_auto_answers_only_in_the_browser(
    idle: None, desk_of: Any, patient: RecordingPhone, pbx: Pbx, ring_both_101: BaresipPhone,
    originated: list[tuple[str, dict[str, str] | None]], standby: bool,
) -> None:  # fmt: skip
    """«Оба»: with the window's standby line, the «Звонок» takes it and the desk phone does
    not ring at all; without one, it rings the desk phone (no auto-answer header: it rings as
    before) and the browser, which answers by itself and so takes the call; the desk phone
    stops."""
    desk = desk_of("user101", "reg101")
    if not standby:
        _standby(desk, False)
    m_desk = ring_both_101.ctrl.mark()
    _dial_from_the_window(desk, patient, standby=standby)
    mine = dict(e for e in originated if e[0] in ("PJSIP/reg101", "PJSIP/reg101-web"))
    if standby:
        assert mine == {}, mine
        assert not [e for e in ring_both_101.ctrl.events[m_desk:] if e.get("type") == "CALL_INCOMING"]
    else:
        ring_both_101.wait_for_event(event_type("CALL_CLOSED"), 10, m_desk)
        assert mine["PJSIP/reg101"] is None, mine
        header = (mine["PJSIP/reg101-web"] or {}).get("PJSIP_HEADER(add,Call-Info)", "")
        assert "answer-after=0" in header, mine
    desk.main.get_by_test_id("btn-hangup").click()
    expect(desk.phone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    row, legs = _call_row(pbx, PSTN_NUMBER)
    assert "PJSIP/reg101-web" in legs and row.result == "answered"
