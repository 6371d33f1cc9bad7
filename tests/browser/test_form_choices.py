"""A choice of a few in a form (radio buttons): each button stands beside its own words. The
generic rule that stretches a form's inputs to the field's width once put every radio alone
on a line, centred above its label, in «Какой телефон звонит»."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ADMIN_PASSWORD
from .test_web_shell import log_in

pytestmark = pytest.mark.browser


def test_each_radio_sits_beside_its_words(page: Any, live_url: str, users: dict[str, int]) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_url}/admin/users/{users['reg']}")
    page.get_by_text("IP-телефония", exact=True).first.click()  # the tab
    choices = page.get_by_test_id("softphone-ring").locator("label")
    expect(choices).to_have_count(3)
    for i in range(3):
        label = choices.nth(i)
        radio = label.locator("input[type=radio]").bounding_box()
        words = label.bounding_box()
        assert radio is not None and words is not None
        assert radio["width"] < 40, "the radio is stretched across the field"
        # one line: the label is about as tall as the radio, not radio + text stacked
        assert words["height"] < 2 * max(radio["height"], 16), label.inner_text()
