"""How the client reads Mango's answers, on canned responses (no server needed)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from clinic.mango import (
    BadResponseError,
    BadSignError,
    ManualClock,
    RateLimitError,
    ServerError,
    Task,
    tls12_context,
)

from .support import CAMPAIGN, client_answering


def test_error_code_in_status_field_is_an_error() -> None:
    # custom-type/list keeps its code in "status"; an error there must not pass as success.
    client, _ = client_answering(httpx.Response(200, json={"result": [], "status": 3102}))
    with pytest.raises(BadSignError):
        client.custom_fields()


def test_result_code_as_a_string_is_understood() -> None:
    client, _ = client_answering(httpx.Response(200, json={"result": "1000", "task_id": "3224"}))
    assert client.add_task(CAMPAIGN, Task(number="79001234567")) == 3224


def test_add_accepted_without_task_id_says_so() -> None:
    client, _ = client_answering(httpx.Response(200, json={"result": 1000}))
    with pytest.raises(BadResponseError) as caught:
        client.add_task(CAMPAIGN, Task(number="79001234567"))
    assert caught.value.code == 1000  # accepted: the task exists, only its id is unknown


def test_unknown_success_subcode_counts_as_success() -> None:
    client, _ = client_answering(httpx.Response(200, json={"result": 1090}))
    client.delete_task(CAMPAIGN, 1)  # "1090 читать как 1000"


def test_plain_503_is_treated_as_rate_limit_and_retried() -> None:
    clock = ManualClock()
    client, sent = client_answering(
        httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "7"}),
        httpx.Response(200, json={"result": 1000, "task_id": 5}),
        clock=clock,
        max_retries=1,
    )
    assert client.add_task(CAMPAIGN, Task(number="79001234567")) == 5
    assert clock.sleeps == [7.0]  # Retry-After beats the 1 s back-off
    assert len(sent) == 2


def test_vpbx_rate_limit_body_without_429_status_is_still_a_rate_limit() -> None:
    client, _ = client_answering(httpx.Response(200, json={"message": "Rate limit exceeded.", "status": 429}))
    with pytest.raises(RateLimitError):
        client.custom_fields()


def test_other_5xx_without_json_is_a_server_error() -> None:
    client, _ = client_answering(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ServerError) as caught:
        client.delete_task(CAMPAIGN, 1)
    assert caught.value.http_status == 502


def test_request_is_form_encoded_with_the_three_fields() -> None:
    client, sent = client_answering(httpx.Response(200, json={"result": 1000}))
    client.delete_task(CAMPAIGN, 7)
    [request] = sent
    assert request.method == "POST"
    assert str(request.url) == "http://mango.invalid/vpbx/task/delete"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = httpx.QueryParams(request.content.decode())
    assert set(form.keys()) == {"vpbx_api_key", "sign", "json"}
    assert form["json"] == '{"campaign_id":56919,"task_id":7}'


def test_tls_is_pinned_to_1_2() -> None:
    ctx = tls12_context()
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
