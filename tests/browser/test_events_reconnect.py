"""The live call events in a real browser (issue 11, point 1): the page takes a token from
the web app, opens its stream on ari_app's events listener (another origin, allowed by the
CSP and by CORS), shows «нет связи с АТС» when the listener goes away and comes back by
itself within 5 s of its return."""

from __future__ import annotations

import dataclasses
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventskit import EventsListener, wait_until
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from ari_app.events_gateway import MAX_STREAMS_PER_USER
from clinic.config import Config
from webhooks.app import create_app

from .conftest import REGISTRAR_PASSWORD

pytestmark = pytest.mark.browser
SHOTS = Path(tempfile.gettempdir()) / "events-shots"
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


@pytest.fixture()
def web(config: Config, sessions: sessionmaker[Session], listener: EventsListener) -> Iterator[str]:
    config = dataclasses.replace(config, events_port=listener.app.events_port)
    server = make_server("127.0.0.1", 0, create_app(config, session_factory=sessions), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}"
    listener.app.gateway.origins = {origin}  # the page's origin, as MIS_WEB_ORIGIN says
    try:
        yield origin
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _login(page: Any, web: str) -> None:
    page.goto(web + "/login")
    page.get_by_label("Логин").fill("reg")
    page.get_by_label("Пароль").fill(REGISTRAR_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).not_to_have_url(re.compile("/login"))


def test_the_page_reconnects_by_itself_after_the_listener_restarts(
    page: Any, web: str, listener: EventsListener, users: Any
) -> None:
    page.add_init_script(WATCH)
    _login(page, web)
    page.goto(web + "/phone")
    body = page.locator("body")
    expect(body).to_have_attribute("data-phone-events", "on")
    assert listener.counts() == (1, 1)

    listener.run(listener.app.stop_events())  # ari_app restarted
    expect(body).to_have_attribute("data-phone-events", "off")
    expect(page.get_by_test_id("phone-error")).to_have_text("Нет связи с АТС: переподключение…")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "offline.png"))

    listener.run(listener.app.start_events())
    expect(body).to_have_attribute("data-phone-events", "on", timeout=5_000)
    expect(page.get_by_test_id("phone-error")).to_have_text("")
    page.screenshot(path=str(SHOTS / "back.png"))
    assert page.evaluate("window.__csp") == []


def test_the_tabs_of_a_browser_share_one_stream(
    page: Any, web: str, listener: EventsListener, users: dict[str, int]
) -> None:
    """A browser opens at most 6 connections to a host: its tabs share one stream, and when
    the tab holding it closes, another one takes it over."""
    _login(page, web)
    page.goto(web + "/schedule")
    tabs = [page, *(page.context.new_page() for _ in range(7))]
    for tab in tabs[1:]:
        tab.goto(web + "/patients")
    for tab in tabs:
        expect(tab.locator("body")).to_have_attribute("data-phone-events", "on")
    assert listener.counts() == (1, 1)

    incoming = {"uid": "c1", "number": "+79161234567", "number_display": "8 916 123-45-67", "patient": None}

    async def ring() -> None:
        listener.app.notifier.publish("incoming", incoming, user_ids={users["reg"]})

    listener.run(ring())
    for tab in tabs:  # the screen pop in every tab
        expect(tab.get_by_test_id("pop-number")).to_have_text("8 916 123-45-67")
    page.screenshot(path=str(SHOTS / "shared-pop.png"))

    page.close()  # the tab that held the stream
    for tab in tabs[1:]:
        expect(tab.locator("body")).to_have_attribute("data-phone-events", "on")
    wait_until(lambda: listener.counts() == (1, 1), 10, "another tab holds the stream")


def test_a_ninth_browser_tells_the_oldest_why_it_stopped(
    page: Any, web: str, listener: EventsListener, users: Any
) -> None:
    _login(page, web)
    page.goto(web + "/schedule")
    expect(page.locator("body")).to_have_attribute("data-phone-events", "on")
    others = []
    for _ in range(MAX_STREAMS_PER_USER):  # the same registrar in 8 more browsers
        context = page.context.browser.new_context(locale="ru-RU")
        others.append(context)
        tab = context.new_page()
        _login(tab, web)
        tab.goto(web + "/patients")
        expect(tab.locator("body")).to_have_attribute("data-phone-events", "on")
    expect(page.locator("body")).to_have_attribute("data-phone-events", "closed")
    note = page.get_by_test_id("phone-events-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Открыто слишком много вкладок")
    page.screenshot(path=str(SHOTS / "ninth-tab.png"))
    others.pop().close()  # a closed browser closes its stream
    wait_until(lambda: listener.counts() == (7, 7), 10, "the closed browser's stream is gone")
    for context in others:
        context.close()
