"""Presence on the real PBX: baresip phones register, unregister, ring and talk, and the
pages in chromium (the phone window's own line and its directory, the admin's users list)
show it within 2 s, waited on in the DOM. Also: Asterisk still sends the device-state shapes
the fake ARI copies (tests/fixtures/ari-presence)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import expect
from sip_phone import BaresipPhone, PhoneSpec, account_line, event_type
from sqlalchemy import select

from ari_app.app import ThreadedApp
from asterisk_conf import apply
from clinic.models import User
from clinic.softphone import RING_SIP

from .callkit import wait_idle, wait_until
from .pbxkit import Pbx, add_phone_user, serve_web, wait_registered
from .softphonekit import set_ring

pytestmark = [pytest.mark.pbx, pytest.mark.browser]
PASSWORD = "x" * 12  # pbxkit's users
LIVE = 2_000  # ms: a phone's change reaches the page within 2 s
RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "ari-presence" / "device_states.json"
# a registrar of our own whose phone does not answer by itself (its ringing lasts)
EXT, SIP_ID, SECRET = "106", "reg106", "Pw106-secret"
SPEC = PhoneSpec(SIP_ID, SECRET, 5140, 4406, 21400, 21499, answermode="manual")


@pytest.fixture(scope="module")
def phone106(pbx: Pbx, pbx_dir: Path, tone: Path) -> Iterator[BaresipPhone]:
    with pbx.sessions() as s:
        known = s.scalar(select(User.id).where(User.sip_id == SIP_ID))
    if known is None:
        add_phone_user(pbx.sessions, EXT, SIP_ID, SECRET)
        result = apply.apply_from_db(pbx.config, pbx.sessions, None)
        assert result.ok, result.message
    # his phone is this SIP phone, whatever another module made him choose (the softphone
    # tests give 106 «Встроенный софтфон»: his presence would follow the browser then)
    set_ring(pbx, SIP_ID, RING_SIP)
    phone = BaresipPhone(pbx_dir / "phone106", SPEC, tone).start()
    try:
        wait_registered(pbx.config, {SIP_ID})
        yield phone
    finally:
        phone.stop()  # quitting unregisters: 106 is offline again for the other tests


@pytest.fixture(scope="module")
def web(pbx: Pbx, ari_app: ThreadedApp) -> Iterator[str]:
    with serve_web(pbx, ari_app) as origin:
        yield origin


@pytest.fixture()
def browser_of(chromium: Any, web: str) -> Iterator[Any]:
    contexts = []

    def open_as(login: str, path: str) -> Any:
        context = chromium.new_context(locale="ru-RU")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{web}/login")
        page.get_by_label("Логин").fill(login)
        page.get_by_label("Пароль").fill(PASSWORD)
        page.get_by_role("button", name="Войти").click()
        expect(page).not_to_have_url(re.compile("/login"))
        page.goto(web + path)
        expect(page.locator("body")).to_have_attribute("data-phone-events", "on")
        return page

    yield open_as
    for context in contexts:
        context.close()


def _row(page: Any, ext: str) -> Any:
    return page.get_by_test_id("presence-directory").locator(f'tr[data-extension="{ext}"]')


def _user_row(page: Any, login: str) -> Any:
    return page.locator(f'[data-testid="user-row"][data-login="{login}"]').get_by_test_id("presence")


def _shown_everywhere(window: Any, own: Any, users: Any, text: str, timeout: float | None = LIVE) -> None:
    """106's state as shown in another registrar's directory, on 106's own line and in the
    admin's users list (within `timeout` ms; None: Playwright's default)."""
    expect(_row(window, EXT).get_by_test_id("presence")).to_have_text(text, timeout=timeout)
    expect(own.get_by_test_id("own-presence")).to_have_text(text, timeout=timeout)
    expect(_user_row(users, "user106")).to_have_text(text, timeout=timeout)


def _unregister(phone: BaresipPhone) -> None:
    """The phone's account is removed: baresip sends REGISTER with Expires: 0."""
    phone.command("uadel", f"sip:{phone.spec.sip_id}@{phone.spec.registrar}")


def _register(phone: BaresipPhone) -> None:
    mark = phone.ctrl.mark() if phone.ctrl else 0
    phone.command("uanew", account_line(phone.spec))
    phone.wait_for_event(event_type("REGISTER_OK"), 10, mark)


def test_registering_and_unregistering_shows_in_the_window_and_the_users_list_within_2_s(
    pbx: Pbx, phones: dict[str, BaresipPhone], phone106: BaresipPhone, browser_of: Any
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102", SIP_ID})
    window = browser_of("user102", "/phone")
    own = browser_of("user106", "/phone")
    users = browser_of("calladmin", "/admin/users")
    _shown_everywhere(window, own, users, "зарегистрирован", timeout=None)
    expect(_row(window, EXT)).to_contain_text("Регистратор 106")
    expect(_row(own, EXT)).to_have_count(0)  # his own phone is on his line, not in his directory
    try:
        _unregister(phone106)
        _shown_everywhere(window, own, users, "не зарегистрирован")
        expect(_row(window, EXT).get_by_test_id("presence")).to_have_attribute("data-state", "offline")
    finally:
        _register(phone106)
    _shown_everywhere(window, own, users, "зарегистрирован")


def test_a_call_shows_ringing_then_busy_then_registered_again(
    pbx: Pbx, phones: dict[str, BaresipPhone], phone106: BaresipPhone, browser_of: Any
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102", SIP_ID})
    window = browser_of("user101", "/phone")
    users = browser_of("calladmin", "/admin/users")
    caller = _row(window, "102").get_by_test_id("presence")
    callee = _row(window, EXT).get_by_test_id("presence")
    expect(callee).to_have_text("зарегистрирован")
    mark = phone106.ctrl.mark() if phone106.ctrl else 0
    phones["102"].dial(f"sip:{EXT}@127.0.0.1:5060")
    try:
        phone106.wait_for_event(event_type("CALL_INCOMING"), 10, mark)
        expect(callee).to_have_text("звонит", timeout=LIVE)
        expect(caller).to_have_text("занят", timeout=LIVE)
        expect(_user_row(users, "user106")).to_have_text("звонит", timeout=LIVE)
        phone106.command("accept")
        phone106.wait_for_event(event_type("CALL_ESTABLISHED"), 10, mark)
        expect(callee).to_have_text("занят", timeout=LIVE)
        expect(_user_row(users, "user106")).to_have_text("занят", timeout=LIVE)
    finally:
        phones["102"].hangup()
        wait_idle(phones["102"], phone106)
    expect(callee).to_have_text("зарегистрирован", timeout=LIVE)
    expect(caller).to_have_text("зарегистрирован", timeout=LIVE)


def test_after_a_reconnection_the_snapshot_reads_a_ringing_phone_from_asterisk(
    pbx: Pbx, phones: dict[str, BaresipPhone], phone106: BaresipPhone, ari_app: ThreadedApp, browser_of: Any
) -> None:
    """ari_app's events socket drops while 106 rings: no event will say so again, only the
    snapshot read on reconnection (GET /endpoints/PJSIP, then GET /deviceStates/PJSIP%2Freg106
    for the phone in a call, over the socket) can; meanwhile every state was «нет данных»."""
    wait_registered(pbx.config, {"reg102", SIP_ID})
    window = browser_of("user101", "/phone")
    callee = _row(window, EXT).get_by_test_id("presence")
    presence = ari_app.app.service.presence
    mark = phone106.ctrl.mark() if phone106.ctrl else 0
    phones["102"].dial(f"sip:{EXT}@127.0.0.1:5060")
    try:
        phone106.wait_for_event(event_type("CALL_INCOMING"), 10, mark)
        expect(callee).to_have_text("звонит", timeout=LIVE)
        user106 = next(u for u in presence.snapshot()["users"] if u["extension"] == EXT)
        snapshots, reconnects = presence.snapshots, ari_app.app.ari.reconnects
        ari_app.run(ari_app.app.ari._ws.close())  # the socket drops (test-only reach inside)
        wait_until(lambda: presence.snapshots > snapshots and ari_app.app.ari.reconnects > reconnects, 10,
                   "reconnected and the snapshot read")  # fmt: skip
        again = next(u for u in presence.snapshot()["users"] if u["extension"] == EXT)
        assert again["state"] == "ringing"
        assert again["seq"] >= user106["seq"] + 2  # told «нет данных», then «звонит» again
        expect(callee).to_have_text("звонит", timeout=LIVE)
    finally:
        phones["102"].hangup()
        wait_idle(phones["102"], phone106)
    expect(callee).to_have_text("зарегистрирован", timeout=LIVE)


def test_the_directory_calls_a_colleague_from_the_window(
    pbx: Pbx, phones: dict[str, BaresipPhone], ari_app: ThreadedApp, browser_of: Any
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102"})
    window = browser_of("user101", "/phone")
    expect(_row(window, "102").get_by_test_id("presence")).to_have_text("зарегистрирован")
    mark = phones["102"].ctrl.mark() if phones["102"].ctrl else 0
    _row(window, "102").get_by_test_id("directory-call").click()
    phones["102"].wait_for_event(event_type("CALL_ESTABLISHED"), 15, mark)
    expect(window.get_by_test_id("line-state")).to_have_text("Разговор")
    expect(_row(window, "102").get_by_test_id("presence")).to_have_text("занят", timeout=LIVE)
    expect(window.get_by_test_id("own-presence")).to_have_text("занят", timeout=LIVE)
    window.get_by_test_id("btn-hangup").click()
    expect(window.get_by_test_id("line-state")).to_have_text("Свободна")
    expect(_row(window, "102").get_by_test_id("presence")).to_have_text("зарегистрирован", timeout=LIVE)
    wait_idle(phones["101"], phones["102"])


def test_asterisk_sends_the_device_state_shapes_the_fake_copies(pbx: Pbx, phone106: BaresipPhone) -> None:
    """A throw-away ARI application (not ari_app's) subscribed to every device state sees
    106 unregister and register again; the events and answers have the recorded shapes."""
    recorded = json.loads(RECORDED.read_text())
    cfg = pbx.config.pbx
    seen: list[dict[str, Any]] = []

    async def check() -> tuple[Any, Any, Any]:
        token = base64.b64encode(f"{cfg.ari_user}:{cfg.ari_password}".encode()).decode()
        async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as s:
            ws = await s.ws_connect(cfg.ari_url.replace("http", "ws", 1) + "/events?app=presence-check")
            async with s.post(cfg.ari_url + "/applications/presence-check/subscription",
                              params={"eventSource": "deviceState:"}) as resp:  # fmt: skip
                assert resp.status == 200, await resp.text()
            async with s.get(cfg.ari_url + "/endpoints/PJSIP") as resp:
                listed = await resp.json()
            async with s.get(cfg.ari_url + "/deviceStates/PJSIP%2F" + SIP_ID) as resp:
                one = await resp.json()
            loop = asyncio.get_running_loop()

            async def until(state: str) -> None:
                async for msg in ws:
                    event = json.loads(msg.data)
                    device = event.get("device_state") or {}
                    if event.get("type") == "DeviceStateChanged" and device.get("name") == f"PJSIP/{SIP_ID}":
                        seen.append(event)
                        if device.get("state") == state:
                            return

            # registered again only once Asterisk has said it is gone: its device states are
            # worked out on a thread of their own, and a state already back to what it was by
            # the time that thread looks is no change to tell
            await loop.run_in_executor(None, _unregister, phone106)
            await asyncio.wait_for(until("UNAVAILABLE"), 10)
            await loop.run_in_executor(None, _register, phone106)
            await asyncio.wait_for(until("NOT_INUSE"), 10)
            await ws.close()
            return listed, one, seen

    with ThreadPoolExecutor(1) as pool:  # this thread may hold Playwright's loop
        listed, one, events = pool.submit(asyncio.run, check()).result(30)
    assert set(listed[0]) == set(recorded["endpoints_by_tech"][0])
    assert one == {"name": f"PJSIP/{SIP_ID}", "state": "NOT_INUSE"}
    assert [e["device_state"]["state"] for e in events] == ["UNAVAILABLE", "NOT_INUSE"]
    for event in events:
        assert set(event) == set(recorded["events"][0])
        assert set(event["device_state"]) == set(recorded["events"][0]["device_state"])
