"""«ЛПУ → Параметры» in a real browser: a port clash is said at its field, and a change the
PBX refuses comes back with Asterisk's reason in «IP-телефония», the entered values kept."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from clinic.pbx_port import ApplyResult

from .conftest import ADMIN_PASSWORD
from .test_web_shell import log_in

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/mis-shots")
ERROR_RED = "rgb(198, 40, 40)"  # app.css --err
REASON = "Проверка не пройдена: абонент reg101 не загружен; предыдущая конфигурация восстановлена"


class RefusingApplier:
    """The PBX port answering as Asterisk does when it refuses a configuration."""

    def __init__(self) -> None:
        self.pending: list[dict[str, object]] = []

    def __call__(self, author_id: int | None, *, pending: Mapping[str, object] | None = None) -> ApplyResult:
        self.pending.append(dict(pending or {}))
        return ApplyResult(ok=False, message=REASON, revision_id=7)


@pytest.fixture()
def applier() -> RefusingApplier:
    return RefusingApplier()


def _service_tab(page: Any, live_url: str) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(live_url + "/admin/settings?tab=service")


def test_an_rtp_range_over_the_ari_port_is_refused_at_the_field(
    page: Any, live_url: str, users: Any, applier: RefusingApplier
) -> None:
    _service_tab(page, live_url)
    page.get_by_label("RTP с").fill("8000")
    page.get_by_label("по", exact=True).fill("9000")
    page.get_by_role("button", name="Сохранить").click()

    error = page.locator("[data-error-for=rtp_start]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Диапазон RTP 8000–9000 включает занятые порты")
    expect(error).to_contain_text("(HTTP/ARI Asterisk)")
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    expect(page.get_by_label("RTP с")).to_have_value("8000")
    assert applier.pending == []  # never reached the PBX


def test_a_change_the_pbx_refuses_shows_its_reason_by_the_telephony_fields(
    page: Any, live_url: str, users: Any, applier: RefusingApplier
) -> None:
    _service_tab(page, live_url)
    page.get_by_label("RTP с").fill("12000")
    page.get_by_label("по", exact=True).fill("12999")
    page.get_by_role("button", name="Сохранить").click()

    reason = page.locator("[data-error-for=pbx]")
    expect(reason).to_be_visible()
    expect(reason).to_contain_text("Asterisk не принял новые параметры телефонии, они не сохранены")
    expect(reason).to_contain_text(REASON)
    expect(page.get_by_test_id("form-errors")).to_contain_text("Параметры не сохранены")
    expect(page.get_by_label("RTP с")).to_have_value("12000")
    colour = reason.evaluate("el => getComputedStyle(el).color")
    text = page.get_by_label("RTP с").evaluate("el => getComputedStyle(el.closest('fieldset')).color")
    assert colour == ERROR_RED != text, (colour, text)  # red like a field's error (--err)
    assert applier.pending == [{"rtp_end": 12999, "rtp_start": 12000}]
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "settings-pbx-refused.png"), full_page=True)

    page.goto(page.url.split("?")[0] + "?tab=service")  # a fresh look: the old values stand
    expect(page.get_by_label("RTP с")).to_have_value("10000")
