"""Every documented quirk of the real service (smsru.md §1–§7), read by the client.

Quirks the emulator reproduces by itself are tested end to end; the others arrive as
canned bodies through the emulator's ``raw`` fault, byte for byte as the real service
(or a plausible variant of it) would send them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from clinic.smsru import SmsRuBadResponse, SmsRuClient, SmsRuError

from .support import Sms

# -- reproduced by the emulator ----------------------------------------------------------


def test_reply_is_php_json_with_escaped_slashes_and_real_headers(sms: Sms) -> None:
    reply = sms.raw("callback/add", {"api_id": sms.emulator.options.api_id, "json": "1", "url": "http://h/x"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.headers["sms-api"] == "CERN/3.0"
    assert '"http:\\/\\/h\\/x"' in reply.text and '\n    "status": "OK"' in reply.text
    assert reply.json()["callback"] == ["http://h/x"]


def test_errors_still_answer_http_200(sms: Sms) -> None:
    reply = sms.raw("my/balance", {"api_id": "wrong", "json": "1"})
    assert (reply.status_code, reply.json()["status_code"]) == (200, 200)


def test_total_limit_string_and_used_today_null(sms: Sms, client: SmsRuClient) -> None:
    raw_limit = sms.call("my/limit")
    assert raw_limit["total_limit"] == "1000" and raw_limit["used_today"] == 0
    assert client.limit().total_limit == 1000
    raw_free = sms.call("my/free")
    assert raw_free["used_today"] is None
    assert client.free().used_today == 0


def test_top_level_ok_when_every_recipient_failed(sms: Sms, client: SmsRuClient) -> None:
    client.stoplist_add("79161234567")
    raw = sms.call("sms/send", to="79161234567,1", msg="x")
    assert (raw["status"], raw["status_code"]) == ("OK", 100)
    result = client.send(["79161234567", "1"], "x")  # no exception: the request itself was fine
    assert result.accepted == [] and [r.code for r in result.rejected] == [209, 202]


def test_sms_id_on_error_entries_and_missing_totals(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(senders=[])
    raw_send = sms.call("sms/send", to="79161234567", msg="x")["sms"]["79161234567"]
    assert raw_send["status"] == "ERROR" and raw_send["status_code"] == 221 and raw_send["sms_id"]
    raw_cost = sms.call("sms/cost", to="79161234567", msg="x")
    assert "total_cost" not in raw_cost and "total_sms" not in raw_cost
    with sms.client() as client:
        cost = client.cost("79161234567", "x")
        assert (cost.total_cost, cost.total_sms) == (None, None)
        assert cost.recipients[0].code == 221


def test_no_senders_key(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(senders=[])
    assert "senders" not in sms.call("my/senders")
    with sms.client() as client:
        assert client.senders() == []


def test_status_of_unknown_id_has_no_balance(sms: Sms, client: SmsRuClient) -> None:
    raw = sms.call("sms/status", sms_id="000000-1")
    assert "balance" not in raw
    assert raw["sms"]["000000-1"] == {
        "status": "ERROR",
        "status_code": -1,
        "status_text": "Сообщение не найдено",
    }
    result = client.status("000000-1")
    assert result.balance is None and not result.messages["000000-1"].found


def test_empty_stoplist_is_a_php_array(sms: Sms, client: SmsRuClient) -> None:
    assert sms.call("stoplist/get")["stoplist"] == []
    assert client.stoplist_get() == {}


def test_no_callback_key_after_deleting_the_last(sms: Sms) -> None:
    sms.call("callback/add", url="http://127.0.0.1:9/cb")
    assert "callback" not in sms.call("callback/del", url="http://127.0.0.1:9/cb")


def test_reply_keys_are_normalised_numbers(sms: Sms, client: SmsRuClient) -> None:
    assert list(sms.call("sms/send", to="8 (916) 123-45-67", msg="x")["sms"]) == ["79161234567"]
    result = client.send("9161234568", "x")  # ten digits, as some callers store them
    assert (result.recipients[0].phone, result.recipients[0].key) == ("9161234568", "79161234568")
    assert result.recipients[0].accepted


def test_legacy_parameter_names(sms: Sms) -> None:
    assert (
        sms.call("sms/send", to="79161234567", text="legacy text")["sms"]["79161234567"]["status_code"] == 100
    )
    multi = sms.call("sms/send", **{"multi[79161234568]": "legacy multi"})
    assert multi["sms"]["79161234568"]["status_code"] == 100
    sms_id = multi["sms"]["79161234568"]["sms_id"]
    assert sms.call("sms/status", id=sms_id)["sms"][sms_id]["status_code"] == 100
    assert {m["text"] for m in sms.messages()} == {"legacy text", "legacy multi"}


def test_get_and_query_string_mixing(sms: Sms) -> None:
    api_id = sms.emulator.options.api_id
    via_get = sms.http.get(f"{sms.url}/my/balance", params={"api_id": api_id, "json": "1"})
    assert via_get.json()["balance"] == 100.0
    mixed = sms.http.post(f"{sms.url}/my/balance?json=1", data={"api_id": api_id})
    assert mixed.json()["status_code"] == 100


def test_plain_text_without_json(sms: Sms, client: SmsRuClient) -> None:
    client.stoplist_add("79161234568")
    api_id = sms.emulator.options.api_id
    reply = sms.raw("sms/send", {"api_id": api_id, "to": "79161234567,79161234568", "msg": "x"})
    first, second, third, last = reply.text.split("\n")
    assert (first, third, last) == ("100", "209", "balance=98.50")
    assert second == sms.messages()[0]["sms_id"]
    assert sms.raw("my/balance", {"api_id": api_id}).text == "100\n98.50"


# -- canned bodies -----------------------------------------------------------------------


def test_numbers_as_strings_everywhere(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("my/balance", '{"status":"OK","status_code":"100","balance":"4122.56"}')
    assert client.balance() == Decimal("4122.56")
    sms.canned(
        "sms/status",
        '{"status":"OK","status_code":100,"sms":{"1-1":{"status":"OK","status_code":"103","cost":"0.50",'
        '"send_time":"1700000000","status_time":1700000060}},"balance":"10"}',
    )
    entry = client.status("1-1").messages["1-1"]
    assert (entry.code, entry.cost, entry.send_time, entry.status_time) == (
        103, Decimal("0.50"), 1700000000, 1700000060
    )  # fmt: skip
    assert entry.delivered


def test_balance_as_integer_and_comma_decimal(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("my/balance", '{"status":"OK","status_code":100,"balance":10}')
    assert client.balance() == Decimal(10)
    sms.canned("my/balance", '{"status":"OK","status_code":100,"balance":"10,25"}')
    assert client.balance() == Decimal("10.25")


def test_status_flag_without_code_and_code_without_flag(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("my/balance", '{"status":"OK","balance":1.5}')
    assert client.balance() == Decimal("1.5")
    sms.canned("my/balance", '{"status_code":100,"balance":2.5}')
    assert client.balance() == Decimal("2.5")
    sms.canned("my/balance", '{"status":"ERROR","status_text":"Что-то не так"}')
    with pytest.raises(SmsRuError) as caught:
        client.balance()
    assert caught.value.code is None and caught.value.text == "Что-то не так"


def test_recipient_missing_from_the_reply(sms: Sms, client: SmsRuClient) -> None:
    sms.canned(
        "sms/send",
        '{"status":"OK","status_code":100,"sms":{"79161234567":{"status":"OK","status_code":100,'
        '"sms_id":"000000-5"}},"balance":1}',
    )
    result = client.send(["79161234567", "79161234568"], "x")
    present, missing = result.recipients
    assert present.accepted and present.sms_id == "000000-5"
    assert missing.missing and not missing.ok
    assert isinstance(missing.error, SmsRuBadResponse) and missing.error.outcome_unknown


def test_null_or_array_sms_map(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("sms/send", '{"status":"OK","status_code":100,"sms":null,"balance":1}')
    assert [r.missing for r in client.send("79161234567", "x").recipients] == [True]
    sms.canned("sms/status", '{"status":"OK","status_code":100,"sms":[]}')
    assert client.status("1-1").messages == {}


def test_entry_with_code_but_no_status_flag(sms: Sms, client: SmsRuClient) -> None:
    sms.canned(
        "sms/send",
        '{"status":"OK","status_code":100,"sms":{"79161234567":{"status_code":"207"},'
        '"79161234568":{"status_code":100,"sms_id":"0-2"}}}',
    )
    result = client.send(["79161234567", "79161234568"], "x")
    assert [(r.ok, r.code) for r in result.recipients] == [(False, 207), (True, 100)]
    assert result.balance is None


def test_unrequested_reply_key_is_kept(sms: Sms, client: SmsRuClient) -> None:
    sms.canned(
        "sms/send",
        '{"status":"OK","status_code":100,"sms":{"70000000001":{"status":"OK","status_code":100,"sms_id":"0-1"}}}',
    )
    result = client.send("79161234567", "x")
    assert [(r.phone, r.key) for r in result.recipients] == [
        ("79161234567", None),
        ("70000000001", "70000000001"),
    ]


def test_stoplist_as_object_with_null_note(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("stoplist/get", '{"status":"OK","status_code":100,"stoplist":{"79161234567":null}}')
    assert client.stoplist_get() == {"79161234567": ""}
    sms.canned("stoplist/get", '{"status":"OK","status_code":100,"stoplist":{}}')
    assert client.stoplist_get() == {}
    sms.canned("stoplist/get", '{"status":"OK","status_code":100}')
    assert client.stoplist_get() == {}


def test_senders_and_callbacks_as_php_objects(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("my/senders", '{"status":"OK","status_code":100,"senders":{"0":"Klinika","1":"Doctor"}}')
    assert client.senders() == ["Klinika", "Doctor"]
    sms.canned("callback/get", '{"status":"OK","status_code":100}')
    assert client.callback_get() == []


def test_limit_with_missing_keys(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("my/limit", '{"status":"OK","status_code":100}')
    limit = client.limit()
    assert (limit.total_limit, limit.used_today, limit.remaining) == (None, 0, None)


def test_unicode_escaped_text(sms: Sms, client: SmsRuClient) -> None:
    sms.canned("my/balance", '{"status":"ERROR","status_code":200,"status_text":"\\u041d\\u0435\\u043f"}')
    with pytest.raises(SmsRuError) as caught:
        client.balance()
    assert caught.value.text == "Неп"


@pytest.mark.parametrize(
    "body",
    ["", "<html>502 Bad Gateway</html>", "100\n000000-1\nbalance=1", "[1, 2]", '"OK"', '{"balance": 5}'],
)
def test_unusable_bodies_are_bad_responses(sms: Sms, body: str) -> None:
    sms.canned("sms/send", body)
    with sms.client() as client, pytest.raises(SmsRuBadResponse) as caught:
        client.send("79161234567", "x")
    assert caught.value.outcome_unknown
