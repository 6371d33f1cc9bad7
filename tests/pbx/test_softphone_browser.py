"""The built-in softphone in a real browser against the real Asterisk 22: Debian's chromium
with fake media devices (its microphone plays a 1000 Hz tone made by sox), JsSIP over
Asterisk's websocket, DTLS-SRTP + ICE, and a baresip phone at the far end that records what
it hears (baresip's sndfile module; sox measures the tone). The phone rings per the user's
choice: user 106 has «Встроенный софтфон», so only his browser rings."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sip_phone import BaresipPhone, PhoneSpec, event_type, make_tone_wav
from sqlalchemy import select
from werkzeug.serving import make_server

from ari_app.app import ThreadedApp
from asterisk_conf import apply, runtime
from clinic import ami
from clinic.models import Call, User
from clinic.softphone import RING_BOTH, RING_WEB
from webhooks.app import create_app

from .callkit import wait_until
from .pbxkit import Pbx, add_phone_user, wait_registered
from .softphonekit import (
    CHROMIUM,
    PASSWORD,
    RecordingPhone,
    login,
    media_browser,
    no_channels,
    only_standby_lines,
    open_softphone,
    set_ring,
    sox_stat,
    stats,
)

pytestmark = [pytest.mark.pbx, pytest.mark.browser]
WEB_EXT, WEB_SIP = "106", "reg106"  # the registrar whose browser is his phone
FAR_EXT, FAR_SIP = "107", "reg107"  # a desk phone (baresip) that records what it hears
CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


def _ensure_users(pbx: Pbx) -> None:
    with pbx.sessions() as s:
        have = set(s.scalars(select(User.sip_id)).all())
    if WEB_SIP not in have:
        add_phone_user(pbx.sessions, WEB_EXT, WEB_SIP, "Pw106-secret")
    if FAR_SIP not in have:
        add_phone_user(pbx.sessions, FAR_EXT, FAR_SIP, "Pw107-secret")
    with pbx.sessions() as s:
        user = s.scalars(select(User).where(User.sip_id == WEB_SIP)).one()
        user.softphone_ring = RING_WEB
        s.commit()
    result = apply.apply_from_db(pbx.config, pbx.sessions, None)
    assert result.ok, result.message


@pytest.fixture(scope="module")
def far_phone(pbx: Pbx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingPhone]:
    _ensure_users(pbx)
    folder = tmp_path_factory.mktemp("far107")
    tone = make_tone_wav(folder / "tone440.wav")
    spec = PhoneSpec(FAR_SIP, "Pw107-secret", 5160, 4407, 21600, 21699)
    phone = RecordingPhone(folder, spec, tone)
    phone.start()
    try:
        wait_registered(pbx.config, {FAR_SIP})
        yield phone
    finally:
        phone.stop()


@pytest.fixture(scope="module")
def web(pbx: Pbx) -> Iterator[str]:
    config = dataclasses.replace(pbx.config)
    app = create_app(config, session_factory=pbx.sessions)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with media_browser(tmp_path_factory.mktemp("media")) as chromium:
        yield chromium


@dataclasses.dataclass
class Windows:
    main: Any  # the app's window, «Прием по телефону» at first
    phone: Any  # the softphone window opened from it


def _set_devices(pbx: Pbx, mic: str, speaker: str = "") -> None:
    with pbx.sessions() as s:
        user = s.scalars(select(User).where(User.sip_id == WEB_SIP)).one()
        user.mic_device, user.speaker_device = mic, speaker
        s.commit()


@pytest.fixture()
def windows(
    browser: Any, web: str, pbx: Pbx, far_phone: RecordingPhone, ari_app: ThreadedApp
) -> Iterator[Windows]:
    """user106 logged in, the «Прием по телефону» window open, the softphone window opened
    from it, registered, and its standby line up (ari_app answers it, as in production)."""
    context = browser.new_context(locale="ru-RU", timezone_id="Europe/Moscow")
    context.set_default_timeout(15_000)
    page = login(context, web, f"user{WEB_EXT}")
    phone = open_softphone(page)
    try:
        yield Windows(page, phone)
    finally:
        context.close()  # closing the window ends its registration and any call
        no_channels(pbx)
        _set_devices(pbx, "")


@pytest.fixture()
def softphone(windows: Windows) -> Any:
    return windows.phone


def test_softphone_registers_over_websocket(softphone: Any, pbx: Pbx) -> None:
    contacts = wait_registered(pbx.config, {f"{WEB_SIP}-web"})
    contact = contacts[f"{WEB_SIP}-web"]
    assert ";transport=ws" in contact["Uri"].lower()
    assert contact["UserAgent"] == "mis-telephony softphone"
    lines = "\n".join(ami.run(pbx.config.pbx, lambda c: c.command("pjsip show contacts")))
    assert f"{WEB_SIP}-web/" in lines


def test_browser_calls_a_sip_phone_which_hears_the_browsers_tone(
    softphone: Any, far_phone: RecordingPhone, pbx: Pbx, agi_server: Any
) -> None:
    mark = far_phone.ctrl.mark()
    softphone.get_by_test_id("sp-number").fill(FAR_EXT)
    softphone.get_by_test_id("sp-dial").click()
    far_phone.wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark)
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    # media both ways: the browser receives baresip's 440 Hz tone and sends its own
    wait_until(lambda: (stats(softphone).get("inEnergy") or 0) > 0.01, 15, "browser hears the far phone")
    wait_until(lambda: (stats(softphone).get("outPackets") or 0) > 150, 15, "three seconds of audio sent")
    softphone.get_by_test_id("sp-keypad").get_by_role("button", name="5").click()
    # the keypad's tone reaches the far phone as RFC 4733 (baresip reports the digit)
    far_phone.wait_for_event(lambda e: e.get("type") == "CALL_DTMF_START" and e.get("param") == "5", 10, mark)
    recording = max((far_phone.folder / "rec").glob("*dec*.wav"), key=os.path.getmtime)
    # «Выключить микрофон»: the far phone hears silence from then on (8 kHz 16-bit: 16000 B/s)
    softphone.get_by_test_id("sp-mute").click()
    expect(softphone.get_by_test_id("sp-mute")).to_have_attribute("aria-pressed", "true")
    muted_at = recording.stat().st_size
    wait_until(lambda: recording.stat().st_size > muted_at + 40_000, 10, "2.5 s recorded after mute")
    softphone.get_by_test_id("sp-hangup").click()
    far_phone.wait_for_event(event_type("CALL_CLOSED"), 10, mark)
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    only_standby_lines(pbx, 1)  # the window's standby line, nothing of the call
    seconds_before_mute = (muted_at - 44) / 16000
    talk = sox_stat(recording, "trim", "0", f"{seconds_before_mute:.2f}")
    assert abs(talk["Rough   frequency"] - 1000) < 60, talk  # the browser's microphone, 1000 Hz
    assert talk["RMS     amplitude"] > 0.05, talk
    muted = sox_stat(recording, "trim", f"{seconds_before_mute + 1:.2f}")  # 1 s for the switch
    assert muted["RMS     amplitude"] < 0.01, muted
    # the dialplan's call log names the registrar behind the softphone endpoint
    wait_until(lambda: _last_call(pbx, FAR_EXT) is not None, 10, "the call logged")
    call = _last_call(pbx, FAR_EXT)
    assert call is not None and (call.direction, call.user_id, call.result) == (
        "outbound", _user_id(pbx, WEB_SIP), "answered")


def _last_call(pbx: Pbx, number: str) -> Call | None:
    with pbx.sessions() as s:
        return s.scalars(select(Call).where(Call.number == number).order_by(Call.id.desc())).first()


def _user_id(pbx: Pbx, sip_id: str) -> int:
    with pbx.sessions() as s:
        return s.scalars(select(User.id).where(User.sip_id == sip_id)).one()


def _ring(pbx: Pbx, ring: str) -> None:
    set_ring(pbx, WEB_SIP, ring)


@pytest.mark.parametrize("ring", [RING_WEB, RING_BOTH])
def test_sip_phone_calls_the_softphone_and_the_browser_answers_with_govorit(
    windows: Windows, far_phone: RecordingPhone, pbx: Pbx, web: str, ring: str
) -> None:
    # «Оба»: Dial(PJSIP/reg106&PJSIP/reg106-web); 106 has no desk phone, so the browser takes it
    _ring(pbx, ring)
    softphone = windows.phone
    mark = far_phone.ctrl.mark()
    far_phone.dial(f"sip:{WEB_EXT}@127.0.0.1:5060")
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text("Входящий звонок")
    expect(softphone.get_by_test_id("sp-ring-audio")).to_have_attribute("data-ringing", "1")
    expect(windows.main.get_by_test_id("softphone-status")).to_contain_text("Входящий звонок")
    if ring == RING_BOTH:
        windows.main.get_by_test_id("btn-talk").click()  # «Говорить» of «Прием по телефону»
    else:
        softphone.get_by_test_id("sp-answer").click()  # «Говорить» of the softphone window
    far_phone.wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark)
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    expect(softphone.get_by_test_id("sp-ring-audio")).to_have_attribute("data-ringing", "")
    # not taken for ari_app's «unhold» (which would say «Нет активного звонка»)
    expect(windows.main.get_by_test_id("phone-error")).not_to_contain_text("Нет активного звонка")
    wait_until(lambda: (stats(softphone).get("inEnergy") or 0) > 0.01, 15, "browser hears the caller")
    # the registrar works on in the main window: the call lives in the softphone window
    windows.main.goto(f"{web}/schedule")
    windows.main.goto(f"{web}/patients")
    before = stats(softphone)["inPackets"]
    wait_until(lambda: stats(softphone)["inPackets"] > before + 50, 10, "audio still flowing")
    assert far_phone.command("listcalls").get("data", "").count("Active calls (1)") == 1
    far_phone.hangup()
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    only_standby_lines(pbx, 1)  # the window's standby line, nothing of the call
    _ring(pbx, RING_WEB)


def test_call_waiting_holds_the_first_call_and_returns_to_it(
    softphone: Any, far_phone: RecordingPhone, phones: dict[str, BaresipPhone], pbx: Pbx
) -> None:
    second = phones["102"]
    mark, mark2 = far_phone.ctrl.mark(), second.ctrl.mark()
    far_phone.dial(f"sip:{WEB_EXT}@127.0.0.1:5060")
    softphone.get_by_test_id("sp-answer").click()
    far_phone.wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark)
    second.dial(f"sip:{WEB_EXT}@127.0.0.1:5060")
    waiting = softphone.get_by_test_id("sp-waiting")
    expect(waiting).to_contain_text("Второй входящий звонок: Регистратор 102")
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text("Разговор")  # the first goes on
    softphone.get_by_test_id("sp-answer").click()
    second.wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark2)
    expect(waiting).to_contain_text("На удержании: Регистратор 107")
    expect(softphone.get_by_test_id("sp-peer")).to_have_text("Регистратор 102")
    assert "Active calls (1)" in far_phone.command("listcalls").get("data", "")  # held, not dropped
    second.hangup()
    expect(softphone.get_by_test_id("sp-peer")).to_have_text("Регистратор 107")
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    expect(waiting).to_be_hidden()
    before = stats(softphone)["inPackets"]
    wait_until(lambda: stats(softphone)["inPackets"] > before + 50, 10, "the first call's audio is back")
    far_phone.hangup()
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    only_standby_lines(pbx, 1)  # the window's standby line, nothing of the call


def test_saved_devices_missing_fall_back_to_default_then_a_choice_is_saved(
    browser: Any, web: str, pbx: Pbx, far_phone: RecordingPhone
) -> None:
    _set_devices(pbx, "Гарнитура, которой нет", "Колонки, которых нет")
    context = browser.new_context(locale="ru-RU")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.add_init_script(CSP_WATCH)
        page.goto(f"{web}/login")
        page.get_by_label("Логин").fill(f"user{WEB_EXT}")
        page.get_by_label("Пароль").fill(PASSWORD)
        page.get_by_role("button", name="Войти").click()
        expect(page).not_to_have_url(re.compile("/login"))
        page.goto(f"{web}/phone/softphone")
        note = page.get_by_test_id("device-note")
        expect(note).to_be_visible()
        expect(note).to_contain_text(
            "Сохранённое устройство «Гарнитура, которой нет» не найдено: "
            "используется устройство по умолчанию")
        expect(page.get_by_test_id("softphone-state")).to_have_text("Софтфон подключён")  # on the default mic
        # the microphone level meter moves with the fake microphone's tone
        level = page.get_by_test_id("mic-level")
        wait_until(lambda: float(level.get_attribute("data-rms") or 0) > 0.05, 10, "microphone level shown")
        # folded away, the meter stops (its audio graph sleeps); unfolded, it runs again
        page.get_by_text("Настройки звука").click()
        expect(level).to_have_attribute("data-rms", "0")
        assert page.evaluate("() => document.querySelector('[data-testid=\"mic-level\"]').value") == 0
        page.get_by_text("Настройки звука").click()
        wait_until(lambda: float(level.get_attribute("data-rms") or 0) > 0.05, 10, "microphone level again")
        mic = page.get_by_test_id("sp-mic")
        labels = [o for o in mic.locator("option").all_inner_texts() if o != "По умолчанию"]
        assert labels, "the browser lists its (fake) microphones by label"
        mic.select_option(label=labels[0])
        page.get_by_test_id("sp-save-devices").click()
        expect(page.get_by_test_id("sp-settings-message")).to_have_text("Устройства сохранены")
        expect(note).to_be_hidden()
        with pbx.sessions() as s:
            user = s.scalars(select(User).where(User.sip_id == WEB_SIP)).one()
            assert (user.mic_device, user.speaker_device) == (labels[0], "")
        # reopened, the saved microphone is the one chosen, no note
        page.reload()
        expect(page.get_by_test_id("softphone-state")).to_have_text("Софтфон подключён")
        expect(page.get_by_test_id("sp-mic")).to_have_value(labels[0])
        expect(note).to_be_hidden()
        page.get_by_test_id("sp-test-sound").click()
        expect(page.get_by_test_id("sp-settings-message")).to_contain_text("Звучит проверочный сигнал")
        assert page.evaluate("window.__csp") == []  # the websocket and the media pass the policy
    finally:
        context.close()
        _set_devices(pbx, "")


def test_a_second_softphone_window_waits_and_takes_over_when_the_first_closes(
    windows: Windows, web: str, pbx: Pbx
) -> None:
    second = windows.main.context.new_page()
    second.goto(f"{web}/phone/softphone")
    state = second.get_by_test_id("softphone-state")
    expect(state).to_have_attribute("data-state", "second")
    expect(state).to_contain_text("Софтфон уже открыт в другом окне этого браузера")
    expect(windows.phone.get_by_test_id("softphone-state")).to_have_text("Софтфон подключён")
    windows.phone.close(run_before_unload=False)
    expect(state).to_have_text("Софтфон подключён")
    wait_registered(pbx.config, {f"{WEB_SIP}-web"})


@pytest.mark.parametrize(("flags", "message"), [
    # the registrar refused the microphone (headless chromium denies what it is not told to grant)
    (["--use-fake-device-for-media-stream"], "разрешите доступ к микрофону"),
    # no microphone at all (this machine has no sound card)
    (["--use-fake-ui-for-media-stream"], "подключите гарнитуру"),
])
def test_no_microphone_is_said_in_russian_and_nothing_registers(
    browser: Any, web: str, pbx: Pbx, far_phone: RecordingPhone, flags: list[str], message: str
) -> None:
    before = _web_contacts(pbx)  # an earlier test's window may not have unregistered yet
    other = browser.browser_type.launch(executable_path=CHROMIUM, args=["--no-sandbox", *flags])
    try:
        page = other.new_page(locale="ru-RU")
        page.goto(f"{web}/login")
        page.get_by_label("Логин").fill(f"user{WEB_EXT}")
        page.get_by_label("Пароль").fill(PASSWORD)
        page.get_by_role("button", name="Войти").click()
        expect(page).not_to_have_url(re.compile("/login"))
        page.goto(f"{web}/phone/softphone")
        state = page.get_by_test_id("softphone-state")
        expect(state).to_have_attribute("data-state", "nomic", timeout=15_000)
        expect(state).to_contain_text("Микрофон недоступен: ")
        expect(state).to_contain_text(message)
        expect(page.get_by_test_id("sp-dial")).to_be_disabled()
    finally:
        other.close()
    assert _web_contacts(pbx) <= before


def _web_contacts(pbx: Pbx) -> set[str]:
    contacts = ami.run(pbx.config.pbx, lambda c: c.contacts())
    return {c["Uri"] for c in contacts if (c.get("Endpoint") or c.get("AOR")) == f"{WEB_SIP}-web"}


def test_asterisk_restart_mid_call_is_said_and_the_softphone_registers_again(
    softphone: Any, far_phone: RecordingPhone, phones: dict[str, BaresipPhone], pbx: Pbx
) -> None:
    """Last in this module: Asterisk is killed during a call (no BYE, no events), started
    again; the window says so, registers by itself, and «Завершить» clears the dead call.
    The phones of the whole session are registered again afterwards."""
    mark = far_phone.ctrl.mark()
    softphone.get_by_test_id("sp-number").fill(FAR_EXT)
    softphone.get_by_test_id("sp-dial").click()
    far_phone.wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark)
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text("Разговор")
    pid = runtime.running_pid(pbx.config.pbx, pbx.config.data_dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    state = softphone.get_by_test_id("softphone-state")
    expect(state).to_have_attribute("data-state", "offline")
    expect(state).to_contain_text("нет соединения с АТС")
    expect(softphone.get_by_test_id("sp-error")).to_contain_text("Связь с АТС прервалась")
    wait_until(lambda: runtime.running_pid(pbx.config.pbx, pbx.config.data_dir) is None, 10, "Asterisk gone")
    assert apply.apply_from_db(pbx.config, pbx.sessions, None, reload=False).ok
    assert runtime.start(pbx.config.pbx, pbx.config.data_dir).ok
    expect(state).to_have_text("Софтфон подключён", timeout=40_000)  # JsSIP's reconnect backoff
    wait_registered(pbx.config, {f"{WEB_SIP}-web"})
    softphone.get_by_test_id("sp-hangup").click()
    expect(softphone.get_by_test_id("sp-call-state")).to_have_text(re.compile("^Свободна"))
    far_phone.hangup()  # its leg died with Asterisk; baresip has not noticed
    for phone in (far_phone, *phones.values()):
        phone.reregister()
    wait_registered(pbx.config, {FAR_SIP, "reg101", "reg102"})
    only_standby_lines(pbx, 1)  # the window's standby line, nothing of the call
