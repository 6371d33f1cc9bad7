"""Every page fits a registrar's 1280-pixel screen: nothing scrolls the whole page sideways,
and its tab title is plain words (a tag slipped into the title block shows as text there).

A walk through the product found a page wider than the screen that no test had looked at;
this visits every entry of the menu (an administrator sees them all, a registrar his own)
and a record of each kind, on the demo clinic's full tables, and names every page whose
document is wider than the window. A wide table may scroll inside its own box: that is the
page's choice, not the browser's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import Patient, User
from clinic.seed import DEMO_PASSWORD, clinic_today, seed_demo
from webhooks.ui.menu import GROUP_ADMIN, GROUP_PHONE, GROUP_ROBOT, GROUP_SMS

SCREEN = {"width": 1280, "height": 800}
NARROW = {"width": 1024, "height": 768}  # a smaller screen: the top bar may wrap there
SHOTS = os.environ.get("MIS_SCREENSHOTS", "")  # a folder: each page is saved there to look at


def _log_in(page: Any, base: str, login: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def _menu_pages(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all("nav.menu a[href]", "links => links.map(a => a.getAttribute('href'))")
    return sorted(set(hrefs))


def _too_wide(page: Any, base: str, paths: list[str]) -> dict[str, int]:
    """Pages wider than the window (path: extra pixels); a page whose tab title holds markup
    fails at once."""
    wide: dict[str, int] = {}
    for path in paths:
        response = page.goto(base + path)
        # 503: a page of the PBX console when no PBX is connected (it says so, in the layout)
        assert response is not None and response.status in (200, 503), (path, response and response.status)
        page.wait_for_load_state("load")
        title = page.title()
        assert title and "<" not in title and ">" not in title, (path, title)
        extra = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if SHOTS:
            name = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
            page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
        if extra > 0:
            wide[path] = extra
    return wide


def test_no_page_is_wider_than_a_1280_pixel_screen(
    page: Any, live_url: str, sessions: sessionmaker[Session]
) -> None:
    seed_demo(sessions, clinic_today(sessions))
    with sessions() as s:
        patient = s.scalars(select(Patient.id).order_by(Patient.id)).first()
        user = s.scalars(select(User.id).where(User.login == "reg1")).one()
    page.set_viewport_size(SCREEN)
    _log_in(page, live_url, "admin")
    admin_pages = _menu_pages(page)
    assert len(admin_pages) >= 10, admin_pages  # the menu itself was read
    records = [f"/patients/{patient}", f"/admin/users/{user}", "/schedule/new"]
    wide = _too_wide(page, live_url, admin_pages + records)
    # the registrar in a browser of his own (another computer): the admin's last page keeps
    # its scripts running, and a navigation away from it once never left (PostgreSQL leg)
    registrar = page.context.browser.new_context(locale="ru-RU", timezone_id="Europe/Moscow", viewport=SCREEN)
    registrar.set_default_timeout(10_000)
    try:
        own = registrar.new_page()
        _log_in(own, live_url, "reg1")
        wide.update(_too_wide(own, live_url, _menu_pages(own)))
    finally:
        registrar.close()
    assert wide == {}, f"pages wider than the screen (path: extra pixels): {wide}"


# The top bar's geometry: every top-level menu entry (a link or a group's «▾» title), the menu
# box, and the brand and user blocks beside it, in CSS pixels.
_TOPBAR_JS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, height: r.height}; };
  const items = [...document.querySelectorAll("nav.menu > a, nav.menu > details > summary")];
  return {
    items: items.map((el) => ({text: el.textContent.trim(), ...box(el)})),
    menu: box(document.querySelector("nav.menu")),
    brand: box(document.querySelector("header.topbar .brand")),
    whoami: box(document.querySelector("header.topbar .whoami")),
    bar: box(document.querySelector("header.topbar")),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
}"""


def _topbar(page: Any, name: str) -> dict[str, Any]:
    geometry: dict[str, Any] = page.evaluate(_TOPBAR_JS)
    if SHOTS:
        page.locator("header.topbar").screenshot(path=str(Path(SHOTS) / f"topbar_{name}.png"))
    return geometry


def _assert_one_line(geometry: dict[str, Any], who: str) -> None:
    """The menu's entries share one row, the menu box is one entry high, and the brand and the
    user block sit on that row too (not wrapped above or below it)."""
    items = geometry["items"]
    assert len(items) >= 3, (who, items)  # the menu itself was read
    rows = {round(item["top"]) for item in items}
    assert len(rows) == 1, f"{who}: the menu wraps onto {len(rows)} rows: {items}"
    item_height = max(item["height"] for item in items)
    assert geometry["menu"]["height"] <= item_height + 1, (who, geometry["menu"], item_height)
    top, bottom = min(i["top"] for i in items), max(i["bottom"] for i in items)
    for block in ("brand", "whoami"):
        middle = (geometry[block]["top"] + geometry[block]["bottom"]) / 2
        assert top <= middle <= bottom, f"{who}: «{block}» is not on the menu's row: {geometry}"


def test_the_top_menu_is_one_line_at_1280_and_fits_at_1024(
    page: Any, live_url: str, sessions: sessionmaker[Session]
) -> None:
    """The administrator's menu (every group) and a registrar's fit one line of a 1280-pixel
    screen; at 1024 the bar may wrap but nothing in it is pushed past the window's edge."""
    seed_demo(sessions, clinic_today(sessions))
    for login in ("admin", "reg1"):
        page.context.clear_cookies()
        page.set_viewport_size(SCREEN)
        _log_in(page, live_url, login)
        page.goto(live_url + "/schedule")
        wide = _topbar(page, f"{login}_1280")
        if login == "admin":  # the crowded case: every group is there
            groups = {GROUP_PHONE, GROUP_SMS, GROUP_ROBOT, GROUP_ADMIN}
            assert groups <= {item["text"] for item in wide["items"]}, wide["items"]
        _assert_one_line(wide, login)
        page.set_viewport_size(NARROW)
        narrow = _topbar(page, f"{login}_1024")
        assert narrow["overflow"] <= 0, (login, narrow)
        assert narrow["bar"]["right"] <= NARROW["width"], (login, narrow)
        for item in narrow["items"]:  # inside the window, and no entry's own words wrap
            assert item["right"] <= NARROW["width"], (login, item)
            assert item["height"] <= wide["menu"]["height"] + 1, (login, item)
        _assert_drop_downs_fit(page, login, NARROW["width"])
        page.set_viewport_size(SCREEN)
        _assert_drop_downs_fit(page, login, SCREEN["width"])


def _assert_drop_downs_fit(page: Any, who: str, width: int) -> None:
    """Each menu group opens with all its links inside the window."""
    groups = page.locator("nav.menu > details.menu-group")
    assert groups.count() >= 2, who
    for index in range(groups.count()):
        group = groups.nth(index)
        group.locator("summary").click()
        links = group.locator(".dropdown a")
        expect(links.first).to_be_visible()
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"menu_{who}_{width}_{index}.png"))
        for box in (links.nth(i).bounding_box() for i in range(links.count())):
            assert box is not None, (who, width, index)
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (who, width, index, box)
        group.locator("summary").click()  # closed again: the next group's links are not under it
        expect(links.first).to_be_hidden()
