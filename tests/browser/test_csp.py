"""The Content-Security-Policy in a real browser: every page an admin opens runs its
scripts and raises no policy violation (issue 12, point 4)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


def test_every_menu_page_satisfies_the_policy(
    page: Any, live_url: str, users: Any, day_schedule: Any
) -> None:
    page.add_init_script(WATCH)
    page.goto(live_url + "/login")
    page.get_by_label("Логин").fill("admin")
    page.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_test_id("current-user")).to_be_visible()
    hrefs = "els => [...new Set(els.map(e => e.getAttribute('href')))]"
    links = page.eval_on_selector_all("nav a[href^='/']", hrefs)
    assert len(links) > 8
    for href in links:
        response = page.goto(live_url + href)
        assert response is not None and response.headers["content-security-policy"], href
        page.wait_for_load_state("load")
        assert page.evaluate("window.__csp") == [], href
