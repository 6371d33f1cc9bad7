"""The telephony pages in a real browser (Debian's chromium via Playwright) against the real
web app, the real ari_app and Asterisk, with real phones: the incoming-call card pops only
in the ringing registrar's browser; the «Прием по телефону» window drives a call."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sip_phone import BaresipPhone, event_type

from ari_app.app import ThreadedApp

from .callkit import Control, wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, ensure_offline_user, ensure_patient, serve_web, wait_registered

pytestmark = [pytest.mark.pbx, pytest.mark.browser]
PASSWORD = "x" * 12  # pbxkit's users
SHOTS = Path(tempfile.gettempdir()) / "phone-window-shots"  # screenshots of the window, to look at


@pytest.fixture(scope="module")
def web(pbx: Pbx, ari_app: ThreadedApp, agi_server: Any) -> Iterator[str]:
    with serve_web(pbx, ari_app) as origin:
        yield origin


@pytest.fixture()
def browser_of(chromium: Any, web: str) -> Iterator[Any]:
    contexts = []

    def open_as(login: str, path: str = "/schedule") -> Any:
        context = chromium.new_context(locale="ru-RU", timezone_id="Europe/Moscow")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{web}/login")
        page.get_by_label("Логин").fill(login)
        page.get_by_label("Пароль").fill(PASSWORD)
        page.get_by_role("button", name="Войти").click()
        expect(page).not_to_have_url(re.compile("/login"))
        page.goto(web + path)
        expect(page.locator("body")).to_have_attribute("data-phone-events", "on")  # the stream is open
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture()
def idle(
    pbx: Pbx,
    phones: dict[str, BaresipPhone],
    pstn: BaresipPhone,
    ari_app: ThreadedApp,
    control: Control,
    call_users: dict[str, int],
) -> Iterator[None]:
    wait_registered(pbx.config, {"reg101", "reg102"})
    yield
    service = ari_app.app.service
    for uid in list(service.calls):
        control.post(call_users["admin"], f"/calls/{uid}/hangup")
    wait_until(lambda: not service.calls, 10, "all calls ended")
    wait_idle(phones["101"], phones["102"], pstn)


def test_incoming_call_pops_the_card_only_in_the_ringing_registrars_browser(
    pbx: Pbx,
    idle: None,
    browser_of: Any,
    pstn: BaresipPhone,
    phones: dict[str, BaresipPhone],
    ari_app: ThreadedApp,
) -> None:
    ensure_patient(pbx)
    page101, page102 = browser_of("user101"), browser_of("user102")
    m101 = phones["101"].ctrl.mark()
    pstn.dial("sip:101@127.0.0.1:5060")
    pop = page101.get_by_test_id("call-pop")
    expect(pop).to_be_visible()
    expect(pop.get_by_test_id("pop-patient")).to_have_text("Звонков Пётр Ильич")
    expect(pop.get_by_test_id("pop-number")).to_have_text("+7 916 123-45-67")  # grouped for reading
    expect(pop.get_by_test_id("pop-appointments").locator("li")).to_have_count(1)
    phones["101"].wait_for_event(event_type("CALL_ESTABLISHED"), 10, m101)
    wait_until(lambda: any(c.state == "talking" for c in ari_app.app.service.calls.values()), 10, "talking")
    # 102's page has had its event stream open all along and shows nothing
    expect(page102.get_by_test_id("call-pop")).to_have_count(0)
    pstn.hangup()
    wait_until(lambda: not ari_app.app.service.calls, 10, "call ended")
    expect(page102.get_by_test_id("call-pop")).to_have_count(0)
    # the card follows the link to the patient
    pop.get_by_test_id("pop-patient").click()
    expect(page101.get_by_test_id("patient-name")).to_have_text("Звонков Пётр Ильич")
    expect(page101.get_by_test_id("patient-calls").get_by_test_id("call-row").first).to_have_attribute(
        "data-result", "answered"
    )


def test_phone_window_drives_a_call_and_the_log_plays_the_recording(
    pbx: Pbx, idle: None, browser_of: Any, pstn: BaresipPhone, phones: dict[str, BaresipPhone]
) -> None:
    page = browser_of("user101", "/phone")
    state = page.get_by_test_id("line-state")
    expect(state).to_have_text("Свободна")
    page.get_by_test_id("phone-number").fill("8 (916) 123-45-67")
    page.get_by_test_id("btn-dial").click()
    expect(state).to_have_text("Разговор")
    page.get_by_test_id("btn-hold").click()
    expect(state).to_have_text("Удержание")
    page.get_by_test_id("btn-talk").click()
    expect(state).to_have_text("Разговор")
    page.get_by_test_id("btn-record").click()
    expect(state).to_have_text("Разговор · Запись")
    uid = page.get_by_test_id("line-state").locator("xpath=ancestor::section").get_attribute("data-call-uid")
    spool = pbx.config.pbx.chroot / "var/spool/asterisk/recording" / f"call-{uid}-1.wav"
    wait_until(lambda: spool.exists() and spool.stat().st_size > 16_000, 10, "recording grows")
    page.get_by_test_id("btn-record").click()
    expect(state).to_have_text("Разговор")
    m = pstn.ctrl.mark()
    page.get_by_test_id("keypad").get_by_role("button", name=re.compile(r"^5")).click()
    assert pstn.wait_for_event(event_type("CALL_DTMF_START"), 10, m).get("param") == "5"
    page.get_by_test_id("btn-hangup").click()
    expect(state).to_have_text("Свободна")

    page.goto(page.url.replace("/phone", "/calls"))
    row = page.locator(f'[data-call-uid="{uid}"]')
    expect(row).to_have_attribute("data-result", "answered")
    audio = row.get_by_test_id("recording")
    expect(audio).to_have_count(1)
    src = audio.get_attribute("src")
    resp = page.request.get(page.url.split("/calls")[0] + src)
    assert resp.status == 200 and resp.headers["content-type"] == "audio/wav" and len(resp.body()) > 16_000


def test_phone_window_explains_errors(pbx: Pbx, idle: None, browser_of: Any) -> None:
    page = browser_of("user101", "/phone")
    page.get_by_test_id("phone-number").fill("12-34")
    page.get_by_test_id("btn-dial").click()
    expect(page.get_by_test_id("phone-error")).to_contain_text("Некорректный номер телефона")
    page.get_by_test_id("phone-number").fill("999")
    page.get_by_test_id("btn-dial").click()
    expect(page.get_by_test_id("phone-error")).to_have_text("Неизвестный добавочный номер 999")
    page.get_by_test_id("btn-hold").click()
    expect(page.get_by_test_id("phone-error")).to_have_text("Нет активного звонка")
    ensure_patient(pbx)
    page.get_by_test_id("phone-number").fill("Звонков")
    page.get_by_test_id("btn-find").click()
    expect(page.get_by_test_id("find-item")).to_have_count(1)
    expect(page.get_by_test_id("find-item")).to_contain_text("Звонков Пётр Ильич")
    noext = browser_of("noext", "/phone")
    expect(noext.get_by_test_id("no-extension")).to_contain_text("не настроен добавочный номер")
    noext.get_by_test_id("phone-number").fill(PSTN_NUMBER)
    noext.get_by_test_id("btn-dial").click()
    expect(noext.get_by_test_id("phone-error")).to_contain_text("не настроен добавочный номер SIP")


def test_click_to_call_from_the_patient_card(
    pbx: Pbx, idle: None, browser_of: Any, pstn: BaresipPhone
) -> None:
    patient = ensure_patient(pbx)
    page = browser_of("user101", f"/patients/{patient}")
    m = pstn.ctrl.mark()
    page.get_by_test_id("call-patient").click()
    expect(page.get_by_test_id("line-state")).to_have_text("Разговор")
    expect(page.get_by_test_id("line-peer")).to_have_text("Звонков Пётр Ильич")
    pstn.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m)
    page.get_by_test_id("btn-hangup").click()
    expect(page.get_by_test_id("line-state")).to_have_text("Свободна")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.locator("[data-phone-window]").screenshot(path=str(SHOTS / f"{name}.png"))


def test_phone_window_shows_only_what_belongs_to_the_moment(
    pbx: Pbx, idle: None, browser_of: Any, pstn: BaresipPhone, phones: dict[str, BaresipPhone]
) -> None:
    """The transfer panel opens with «Перевод» only; «Набор номера…» lasts while the phones
    ring; the previous call's reason or error goes on the next dial; the keypad on hold
    leaves the number alone."""
    ensure_offline_user(pbx, "105")
    page = browser_of("user101", "/phone")
    state, peer = page.get_by_test_id("line-state"), page.get_by_test_id("line-peer")
    panel, number = page.get_by_test_id("transfer-panel"), page.get_by_test_id("phone-number")
    error, status = page.get_by_test_id("phone-error"), page.get_by_test_id("phone-message")
    expect(panel).to_be_hidden()
    assert panel.evaluate("node => getComputedStyle(node).display") == "none"
    _shot(page, "1-idle")
    page.get_by_test_id("btn-transfer").click()
    expect(error).to_have_text("Нет активного звонка")
    expect(panel).to_be_hidden()

    number.fill("8 (916) 123-45-67")
    page.get_by_test_id("btn-dial").click()
    expect(state).to_have_text("Разговор")
    expect(status).to_have_text("")  # «Набор номера …» ended with the ringing
    expect(error).to_have_text("")
    page.get_by_test_id("btn-transfer").click()
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("btn-transfer-blind")).to_be_visible()
    expect(page.get_by_test_id("btn-transfer-complete")).to_be_hidden()  # no consultation yet
    _shot(page, "2-talking-transfer-panel")
    page.get_by_test_id("btn-transfer").click()
    expect(panel).to_be_hidden()

    page.get_by_test_id("btn-hold").click()
    expect(state).to_have_text("Удержание")
    page.get_by_test_id("keypad").get_by_role("button", name=re.compile(r"^5")).click()
    expect(error).to_contain_text("Звонок на удержании")
    assert number.input_value() == "8 (916) 123-45-67"
    _shot(page, "3-held-keypad")
    page.get_by_test_id("btn-talk").click()
    expect(state).to_have_text("Разговор")
    page.get_by_test_id("btn-hangup").click()
    expect(state).to_have_text("Свободна")
    expect(peer).to_have_text("Завершён регистратором")
    _shot(page, "4-ended")
    wait_idle(phones["101"], pstn)

    number.fill("105")
    page.get_by_test_id("btn-dial").click()
    expect(error).to_have_text(
        "Телефон доб. 105 не зарегистрирован на АТС: абонент сейчас не может принять звонок"
    )
    expect(peer).to_have_text("")  # not the last call's «Завершён регистратором»
    expect(status).to_have_text("")
    expect(state).to_have_text("Свободна")
    _shot(page, "5-next-dial-refused")


def test_after_a_transfer_the_call_is_in_the_takers_window_not_the_first_registrars(
    pbx: Pbx,
    idle: None,
    browser_of: Any,
    pstn: BaresipPhone,
    phones: dict[str, BaresipPhone],
    control: Control,
    call_users: dict[str, int],
) -> None:
    """101 consults 102 and completes the transfer: 101's window frees the line and says why,
    its «Завершить» and keypad no longer reach the call; 102's window has the call and
    drives it (tones to the patient, «Завершить»)."""
    page101, page102 = browser_of("user101", "/phone"), browser_of("user102", "/phone")
    state101, state102 = page101.get_by_test_id("line-state"), page102.get_by_test_id("line-state")
    page101.get_by_test_id("phone-number").fill("8 (916) 123-45-67")
    page101.get_by_test_id("btn-dial").click()
    expect(state101).to_have_text("Разговор")
    uid = page101.locator("[data-phone-window]").get_attribute("data-call-uid")
    page101.get_by_test_id("btn-transfer").click()
    page101.get_by_test_id("transfer-target").fill("102")
    page101.get_by_test_id("btn-transfer-attended").click()
    expect(state101).to_have_text("Удержание")
    reg101 = call_users["101"]
    consulting = lambda: control.get(reg101, f"/calls/{uid}").json()["transfer"]["answered"]  # noqa: E731
    wait_until(consulting, 10, "102 consults")
    page101.get_by_test_id("btn-transfer-complete").click()
    expect(state101).to_have_text("Свободна")
    expect(page101.get_by_test_id("line-peer")).to_have_text("Переведён на 102")
    page101.get_by_test_id("btn-hangup").click()
    expect(page101.get_by_test_id("phone-error")).to_have_text("Нет активного звонка")

    expect(state102).to_have_text("Разговор")
    m = pstn.ctrl.mark()
    page102.get_by_test_id("keypad").get_by_role("button", name=re.compile(r"^7")).click()
    assert pstn.wait_for_event(event_type("CALL_DTMF_START"), 10, m).get("param") == "7"
    page102.get_by_test_id("btn-hangup").click()
    expect(state102).to_have_text("Свободна")
    expect(page102.get_by_test_id("line-peer")).to_have_text("Переведён на 102; Завершён регистратором")
