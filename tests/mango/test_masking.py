"""The key and salt never reach logs, exception text or the exchange log."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import httpx
import pytest

from clinic.mango import (
    BadSignError,
    MangoClient,
    MangoError,
    MangoSettings,
    ServerError,
    Task,
    TransportError,
    mask_form,
    mask_secrets,
    redact,
    signed_form,
)

from .support import CAMPAIGN, KEY, SALT, RunningEmulator, client_answering


def test_mask_form_keeps_what_an_admin_needs() -> None:
    form = signed_form(KEY, SALT, {"campaign_id": CAMPAIGN, "comment": "A1"})
    masked = mask_form(form, KEY, SALT)
    assert masked["vpbx_api_key"] == "*" * (len(KEY) - 4) + KEY[-4:]
    assert masked["sign"] == form["sign"][:8] + "…"
    assert masked["json"] == form["json"]


def test_a_secret_inside_the_payload_is_hidden_too() -> None:
    form = signed_form(KEY, SALT, {"comment": f"oops {SALT} and {KEY}"})
    masked = mask_form(form, KEY, SALT)
    assert SALT not in masked["json"] and KEY not in masked["json"]
    assert "oops *** and" in masked["json"]


def test_mask_secrets_walks_nested_values() -> None:
    value = {"a": [SALT, {"b": f"x{KEY}x"}], "n": 5}
    masked = mask_secrets(value, KEY, SALT)
    assert masked["n"] == 5
    assert SALT not in str(masked) and KEY not in str(masked)
    assert redact("nothing secret", KEY, SALT) == "nothing secret"


def test_settings_repr_shows_neither_key_nor_salt() -> None:
    text = repr(MangoSettings(api_key=KEY, api_salt=SALT))
    assert KEY not in text and SALT not in text


def test_echoed_secrets_in_an_error_message_are_masked() -> None:
    client, _ = client_answering(
        httpx.Response(500, json={"result": 5003, "message": f"bad salt {SALT} for {KEY}"})
    )
    with pytest.raises(ServerError) as caught:
        client.custom_fields()
    assert SALT not in str(caught.value) and KEY not in str(caught.value)
    assert "***" in caught.value.message


def test_non_json_answer_is_a_bad_response_without_secrets() -> None:
    client, _ = client_answering(httpx.Response(200, text=f"<html>{SALT}</html>"))
    with pytest.raises(MangoError) as caught:
        client.custom_fields()
    assert caught.value.code == 0
    assert SALT not in str(caught.value)


def test_nothing_secret_is_logged_on_any_path(
    emu: RunningEmulator,
    make_client: Callable[..., MangoClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="clinic.mango")
    errors: list[MangoError] = []
    good = make_client(emu, max_retries=1)
    good.add_task(CAMPAIGN, Task(number="79001234567"))
    with socket.socket() as blocker:  # bound, not listening: connections are refused
        blocker.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{blocker.getsockname()[1]}/vpbx/"
        for attempt in (
            lambda: make_client(emu, api_salt=SALT + "x").custom_fields(),  # bad sign
            lambda: make_client(emu, base_url=unreachable, max_retries=1).custom_fields(),
            lambda: good.add_task(CAMPAIGN, Task(number="79001234567")),  # duplicate
        ):
            with pytest.raises(MangoError) as caught:
                attempt()
            errors.append(caught.value)
    assert [type(e) for e in errors][:2] == [BadSignError, TransportError]
    text = caplog.text + " ".join(str(e) for e in errors)
    assert caplog.records, "the client logs its requests"
    assert SALT not in text
    assert KEY not in text
