"""Transport failures, the ambiguous-outcome distinction, and which calls are retried."""

from __future__ import annotations

import socket
from decimal import Decimal

import httpx
import pytest

from clinic.smsru import (
    Exchange,
    RetryPolicy,
    SmsRuAuthError,
    SmsRuBadResponse,
    SmsRuClient,
    SmsRuConnectError,
    SmsRuRetryableError,
    SmsRuTimeout,
)

from .support import API_ID, WAIT, Sms


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_send_timeout_after_processing_is_ambiguous_and_not_retried(sms: Sms) -> None:
    sms.faults({"kind": "timeout", "path": "sms/send", "process": True, "count": 1})
    seen: list[Exchange] = []
    client = sms.client(read_timeout=0.3, on_exchange=seen.append)
    with client, pytest.raises(SmsRuTimeout) as caught:
        client.send("79161234567", "Приём завтра в 10:00")
    assert caught.value.outcome_unknown and caught.value.method == "sms/send"
    assert isinstance(caught.value, SmsRuRetryableError)
    assert [e.attempt for e in seen] == [1]  # one try only
    assert sms.emulator.wait_for_holds(1, WAIT)
    # Why the ledger must say "unknown": the service did send it.
    assert [m["phone"] for m in sms.messages()] == ["79161234567"]


def test_send_timeout_before_processing_looks_the_same_to_the_client(sms: Sms) -> None:
    sms.faults({"kind": "timeout", "path": "sms/send", "process": False, "count": 1})
    with sms.client(read_timeout=0.3) as client, pytest.raises(SmsRuTimeout) as caught:
        client.send("79161234567", "x")
    assert caught.value.outcome_unknown
    assert sms.emulator.wait_for_holds(1, WAIT)
    assert sms.messages() == []


def test_send_connection_refused_is_not_ambiguous() -> None:
    seen: list[Exchange] = []
    url = f"http://127.0.0.1:{_closed_port()}"
    client = SmsRuClient(API_ID, base_url=url, on_exchange=seen.append, sleep=lambda s: None)
    with client, pytest.raises(SmsRuConnectError) as caught:
        client.send("79161234567", "x")
    assert not caught.value.outcome_unknown  # nothing reached sms.ru: safe to send again later
    assert isinstance(caught.value, SmsRuRetryableError)
    assert len(seen) == 1 and seen[0].http_status is None and seen[0].error


def test_send_is_not_retried_on_220_or_http_500(sms: Sms) -> None:
    for rule in ({"kind": "api_error", "code": 220}, {"kind": "http_status", "status": 500}):
        sms.faults({**rule, "path": "sms/send", "count": 1})
        seen: list[Exchange] = []
        with sms.client(on_exchange=seen.append) as client, pytest.raises(SmsRuRetryableError) as caught:
            client.send("79161234567", "x")
        assert len(seen) == 1
        # 220 is sms.ru saying "not done"; a proxy's 500 says nothing about sms.ru.
        assert caught.value.outcome_unknown == (rule["kind"] == "http_status")
    assert sms.messages() == []


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "api_error", "code": 220},
        {"kind": "api_error", "code": 500},
        {"kind": "http_status", "status": 502},
        {"kind": "raw", "body": "garbage"},
    ],
)
def test_reads_are_retried_with_backoff(sms: Sms, rule: dict[str, object]) -> None:
    sms.faults({**rule, "path": "sms/status", "count": 2})
    slept: list[float] = []
    seen: list[Exchange] = []
    retry = RetryPolicy(attempts=3, backoff=0.5, max_backoff=0.75)
    with sms.client(retry=retry, sleep=slept.append, on_exchange=seen.append) as client:
        result = client.status("000000-1")
    assert not result.messages["000000-1"].found
    assert slept == [0.5, 0.75]  # 0.5, then 1.0 capped at 0.75
    assert [e.attempt for e in seen] == [1, 2, 3]


def test_read_timeout_is_retried(sms: Sms) -> None:
    sms.faults({"kind": "timeout", "path": "my/balance", "count": 1})
    seen: list[Exchange] = []
    with sms.client(read_timeout=1.0, on_exchange=seen.append) as client:
        assert client.balance() == Decimal("100")
    assert [e.error is not None for e in seen] == [True, False]


def test_retries_give_up_after_the_last_attempt(sms: Sms) -> None:
    sms.faults({"kind": "api_error", "path": "my/limit", "code": 500, "count": None})
    seen: list[Exchange] = []
    client = sms.client(retry=RetryPolicy(attempts=4, backoff=0), on_exchange=seen.append)
    with client, pytest.raises(SmsRuRetryableError) as caught:
        client.limit()
    assert caught.value.code == 500 and len(seen) == 4


def test_non_retryable_read_errors_are_not_retried(sms: Sms) -> None:
    seen: list[Exchange] = []
    with sms.client(api_id="bad", on_exchange=seen.append) as client, pytest.raises(SmsRuAuthError):
        client.balance()
    assert len(seen) == 1


def test_writes_other_than_send_are_not_retried(sms: Sms) -> None:
    sms.faults({"kind": "api_error", "path": "*", "code": 220, "count": 3})
    seen: list[Exchange] = []
    with sms.client(on_exchange=seen.append) as client:
        for call in (
            lambda: client.stoplist_add("79161234567"),
            lambda: client.stoplist_del("79161234567"),
            lambda: client.callback_add("http://127.0.0.1:9/cb"),
        ):
            with pytest.raises(SmsRuRetryableError):
                call()
    assert len(seen) == 3


def _mock_client(exc: Exception) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("exc", "expected", "unknown"),
    [
        (httpx.ConnectTimeout("connect timed out"), SmsRuConnectError, False),
        (httpx.PoolTimeout("no free connection"), SmsRuConnectError, False),
        (httpx.ConnectError("refused"), SmsRuConnectError, False),
        (httpx.ReadTimeout("read timed out"), SmsRuTimeout, True),
        (httpx.WriteTimeout("write timed out"), SmsRuTimeout, True),
        (httpx.RemoteProtocolError("server disconnected"), SmsRuBadResponse, True),
        (httpx.ReadError("connection reset"), SmsRuBadResponse, True),
    ],
)
def test_httpx_failures_map_to_the_outcome(exc: Exception, expected: type, unknown: bool) -> None:
    with SmsRuClient(API_ID, http=_mock_client(exc)) as client, pytest.raises(expected) as caught:
        client.send("79161234567", "x")
    assert caught.value.outcome_unknown is unknown
    assert caught.value.__cause__ is None  # the httpx error (holding the request body) is dropped


def test_exchange_hook_failure_does_not_break_the_call(sms: Sms) -> None:
    def broken(exchange: Exchange) -> None:
        raise RuntimeError("journal is down")

    with sms.client(on_exchange=broken) as client:
        assert client.send("79161234567", "x").recipients[0].accepted


def test_latency_option_delays_replies(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(latency=0.5)
    with sms.client(read_timeout=0.1, retry=RetryPolicy(attempts=1)) as client, pytest.raises(SmsRuTimeout):
        client.balance()
