"""«Администрирование → АТС» in chromium: the template list, the editor (variables beside it,
a refused template keeps the admin's text, an oversized paste stopped before sending), the
diff, «Применить» with Asterisk's answer, the history and a revision with its rollback
button. The console is the real one (asterisk_conf.console, a throw-away Asterisk parses each
render) writing into the test's own config folder. Screenshots go to /tmp/mis-shots/pbx-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from smsru.support import ServerThread
from sqlalchemy.orm import Session, sessionmaker
from web.test_pbx_console import conf_dir as _conf_dir
from web.test_pbx_console import console_app

from clinic.config import Config

from .conftest import ADMIN_PASSWORD, RecordingApplier
from .test_web_shell import log_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/mis-shots")
GOOD = "[clinic-custom]\nexten => 555,1,Answer()\n same => n,Playback(hello-world)\n same => n,Hangup()\n"


conf_dir = _conf_dir  # the web tests' fixture: a config folder of the test's own


@pytest.fixture()
def live_url(
    config: Config, sessions: sessionmaker[Session], applier: RecordingApplier, conf_dir: Path
) -> Iterator[str]:
    server = ServerThread(console_app(config, sessions, applier, conf_dir)).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_editor_diff_apply_and_history_pages(page: Any, live_url: str, users: Any, conf_dir: Path) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(live_url + "/schedule")
    page.get_by_text("Администрирование").click()
    page.get_by_role("link", name="АТС", exact=True).click()
    rows = page.get_by_test_id("pbx-template-row")
    expect(rows).to_have_count(11)
    page.screenshot(path=str(SHOTS / "pbx-list.png"), full_page=True)

    page.get_by_role("link", name="extensions_custom.conf.j2").click()
    expect(page.get_by_test_id("pbx-variables")).to_contain_text("{{ users }}")
    expect(page.get_by_test_id("pbx-state")).to_contain_text("исходная")
    editor = page.get_by_test_id("pbx-text")

    # a template Asterisk would never get: refused with file and line, the text stays
    broken = "[clinic-custom]\nexten => 556,1,Answer({{ nope }})\n"
    editor.fill(broken)
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_test_id("pbx-message")).to_contain_text("Шаблон не сохранён")
    expect(page.get_by_test_id("pbx-problems")).to_contain_text("extensions_custom.conf.j2, строка 2")
    expect(page.get_by_test_id("pbx-problems")).to_contain_text("неизвестная переменная")
    expect(editor).to_have_value(broken)
    page.screenshot(path=str(SHOTS / "pbx-refused.png"), full_page=True)

    editor.fill(GOOD)
    page.get_by_role("button", name="Сравнить").click()
    added = page.locator("[data-testid=pbx-diffs] .add", has_text="+exten => 555,1,Answer()")
    expect(added).to_be_visible()
    assert added.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(230, 255, 236)"
    expect(editor).to_have_value(GOOD)  # «Сравнить» did not save, the text is still there
    page.screenshot(path=str(SHOTS / "pbx-diff.png"), full_page=True)

    page.get_by_label("Комментарий к изменению").fill("приветствие на 555")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.locator(".flash-success")).to_contain_text("сохранён (версия 1)")
    expect(page.get_by_test_id("pbx-state")).to_contain_text("своя версия 1")
    expect(page.get_by_test_id("pbx-versions")).to_contain_text("приветствие на 555")
    page.screenshot(path=str(SHOTS / "pbx-editor.png"), full_page=True)

    page.get_by_role("link", name="Шаблоны", exact=True).click()
    page.get_by_placeholder("Комментарий к применению").fill("номер 555")
    page.get_by_role("button", name="Применить").click()
    result = page.get_by_test_id("pbx-result")
    expect(result).to_have_attribute("data-ok", "yes")
    # the throw-away Asterisk's word (it parsed these very files at «Сохранить» a moment ago)
    output = page.get_by_test_id("pbx-asterisk-output")
    expect(output).to_contain_text(re.compile("проверочный экземпляр", re.I))
    assert "exten => 555,1,Answer()" in (conf_dir / "extensions.conf").read_text()
    page.screenshot(path=str(SHOTS / "pbx-applied.png"), full_page=True)

    page.get_by_role("link", name="История", exact=True).click()
    row = page.get_by_test_id("pbx-revision-row").first
    expect(row).to_contain_text("номер 555")
    expect(row).to_contain_text("Петрова Анна Сергеевна")
    page.screenshot(path=str(SHOTS / "pbx-history.png"), full_page=True)
    row.get_by_role("link").click()
    expect(page.get_by_test_id("pbx-rollback-form")).to_be_visible()
    expect(page.get_by_text("extensions_custom.conf.j2")).to_be_visible()
    page.screenshot(path=str(SHOTS / "pbx-revision.png"), full_page=True)

    page.goto(live_url + "/admin/pbx/t/extensions_custom.conf.j2")
    # an oversized paste is stopped in the page, in words, and nothing is sent (the value is
    # set as a paste sets it: Playwright's fill() of 300 KB runs past its timeout)
    editor.evaluate("(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }",
                    "; x\n" * (300 * 1024 // 4))
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_test_id("pbx-size-error")).to_contain_text("Шаблон слишком большой: 300 КБ")
    assert page.url.endswith("/admin/pbx/t/extensions_custom.conf.j2")
    expect(page.get_by_test_id("pbx-state")).to_contain_text("своя версия 1")  # nothing saved

