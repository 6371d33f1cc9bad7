"""Presence in chromium when ari_app is not running: the phone window's directory and the
users list still list the colleagues, each with «нет данных», never a guessed state."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import User
from clinic.security import sip_md5_cred

from .conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser


def test_directory_and_users_list_say_no_data_without_ari_app(
    page: Any, live_url: str, users: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        s.execute(update(User).where(User.id == users["reg"]).values(
            extension="101", sip_id="reg101", sip_md5_cred=sip_md5_cred("reg101", "Secret-101")))  # fmt: skip
    page.goto(live_url + "/login")
    page.get_by_label("Логин").fill("admin")
    page.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).not_to_have_url(re.compile("/login"))

    page.goto(live_url + "/phone")
    row = page.get_by_test_id("presence-directory").locator('tr[data-extension="101"]')
    expect(row).to_contain_text("Сидорова Мария Ивановна")
    expect(row.get_by_test_id("presence")).to_have_text("нет данных")
    expect(row.get_by_test_id("presence")).to_have_attribute("data-state", "unknown")
    expect(row.get_by_test_id("directory-call")).to_have_text("Позвонить")

    page.goto(live_url + "/admin/users")
    cell = page.locator('[data-testid="user-row"][data-login="reg"]').get_by_test_id("presence")
    expect(cell).to_have_text("нет данных")
    # the admin has no phone: no state is made up for him
    expect(
        page.locator('[data-testid="user-row"][data-login="admin"]').get_by_test_id("presence")
    ).to_have_count(0)
