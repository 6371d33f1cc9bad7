"""The api_id never shows: not in logs, exception texts, tracebacks, reprs or the exchange log."""

from __future__ import annotations

import logging
import traceback

import pytest

from clinic.security import mask
from clinic.smsru import Exchange, RetryPolicy, SmsRuError, mask_payload, mask_text

from .support import API_ID, WAIT, Sms


def _everything_that_can_fail(sms: Sms, seen: list[Exchange]) -> list[BaseException]:
    errors: list[BaseException] = []
    sms.faults(
        {"kind": "api_error", "path": "my/balance", "code": 220, "count": 2},
        # A server that echoes the key back in its error text must not leak it either.
        {"kind": "api_error", "path": "my/limit", "code": 200, "text": f"Неправильный api_id {API_ID}"},
        {"kind": "raw", "path": "my/free", "body": f"<html>{API_ID}</html>", "count": 2},
        {"kind": "timeout", "path": "sms/send", "count": 1},
        {"kind": "http_status", "path": "stoplist/get", "status": 503, "count": 2},
    )
    with sms.client(read_timeout=1.0, on_exchange=seen.append, retry=RetryPolicy(attempts=2, backoff=0)) as c:
        assert API_ID not in repr(c)
        for call in (
            c.balance,
            c.limit,
            c.free,
            lambda: c.send("79161234567", "x"),
            c.stoplist_get,
            lambda: c.send("79161234567", "ok"),
            c.senders,
        ):
            try:
                call()
            except SmsRuError as exc:
                errors.append(exc)
    assert sms.emulator.wait_for_holds(1, WAIT)
    return errors


def test_api_id_absent_from_logs_exceptions_and_exchanges(sms: Sms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    seen: list[Exchange] = []
    errors = _everything_that_can_fail(sms, seen)
    # balance (220 on both tries), limit (200), free (garbage twice), send (timeout), stoplist (503 twice)
    assert [type(e).__name__ for e in errors] == [
        "SmsRuRetryableError", "SmsRuAuthError", "SmsRuBadResponse", "SmsRuTimeout", "SmsRuBadResponse"
    ]  # fmt: skip
    assert caplog.records and seen
    for record in caplog.records:
        assert API_ID not in record.getMessage()
    assert API_ID not in caplog.text
    for exc in errors:
        assert API_ID not in str(exc) and API_ID not in repr(exc) and API_ID not in exc.text
        assert API_ID not in "".join(traceback.format_exception(exc))
    for exchange in seen:
        assert API_ID not in repr(exchange)
        assert exchange.request["api_id"] == mask(API_ID)
    assert mask(API_ID) in next(e.response for e in seen if e.method == "my/free")


def test_mask_payload() -> None:
    payload = {
        "api_id": API_ID,
        "password": "secret-pass",
        "to": "79161234567",
        "url": f"http://x/?k={API_ID}",
    }
    masked = mask_payload(payload, API_ID)
    assert masked["api_id"] == mask(API_ID) and masked["api_id"].endswith(API_ID[-4:])
    assert masked["password"] == mask("secret-pass")
    assert masked["to"] == "79161234567"
    assert API_ID not in masked["url"]
    assert payload["api_id"] == API_ID  # the original is untouched
    assert mask_payload([("api_id", API_ID), ("n", 1)]) == {"api_id": mask(API_ID), "n": 1}


def test_mask_text() -> None:
    assert mask_text(f"key={API_ID};again {API_ID}", API_ID).count(API_ID) == 0
    assert mask_text("nothing here", API_ID, None, "") == "nothing here"
