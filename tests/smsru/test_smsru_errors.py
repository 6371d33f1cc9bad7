"""Error mapping: every documented code to its typed error, at the top level and per
number, and the emulator producing each code it can produce by itself."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clinic.smsru import (
    RetryPolicy,
    SmsRuAuthError,
    SmsRuCallbackError,
    SmsRuClient,
    SmsRuError,
    SmsRuFundsError,
    SmsRuLimitError,
    SmsRuMessageError,
    SmsRuRecipientError,
    SmsRuRequestError,
    SmsRuRetryableError,
    SmsRuSenderError,
    error_for_code,
)
from clinic.smsru.codes import ERROR_TEXTS
from emulators.smsru.codes import text_for as server_text

from .support import API_ID, Sms

# Written out by hand rather than derived from clinic.smsru.codes, so a slip there fails here.
EXPECTED: dict[int, type[SmsRuError]] = {
    200: SmsRuAuthError, 201: SmsRuFundsError, 202: SmsRuRecipientError, 203: SmsRuMessageError,
    204: SmsRuSenderError, 205: SmsRuMessageError, 206: SmsRuLimitError, 207: SmsRuRecipientError,
    208: SmsRuRequestError, 209: SmsRuRecipientError, 210: SmsRuRequestError, 211: SmsRuRequestError,
    212: SmsRuMessageError, 213: SmsRuRequestError, 214: SmsRuRecipientError, 215: SmsRuRecipientError,
    216: SmsRuMessageError, 217: SmsRuMessageError, 220: SmsRuRetryableError, 221: SmsRuSenderError,
    230: SmsRuLimitError, 231: SmsRuLimitError, 232: SmsRuLimitError, 233: SmsRuLimitError,
    300: SmsRuAuthError, 301: SmsRuAuthError, 302: SmsRuAuthError, 303: SmsRuAuthError,
    304: SmsRuAuthError, 305: SmsRuAuthError, 500: SmsRuRetryableError, 501: SmsRuLimitError,
    502: SmsRuLimitError, 503: SmsRuLimitError, 504: SmsRuLimitError, 505: SmsRuLimitError,
    506: SmsRuLimitError, 507: SmsRuLimitError, 508: SmsRuLimitError, 550: SmsRuLimitError,
    901: SmsRuCallbackError, 902: SmsRuCallbackError,
}  # fmt: skip


def test_every_documented_code_is_mapped() -> None:
    assert set(EXPECTED) == set(ERROR_TEXTS)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_top_level_code_raises_its_class(sms: Sms, code: int) -> None:
    sms.faults({"kind": "api_error", "path": "my/balance", "code": code})
    with sms.client(retry=RetryPolicy(attempts=1)) as client, pytest.raises(SmsRuError) as caught:
        client.balance()
    error = caught.value
    assert type(error) is EXPECTED[code]
    # The text is the one the server sent (the emulator's own wording), not the client's table.
    assert (error.code, error.text, error.method) == (code, server_text(code), "my/balance")
    assert not error.outcome_unknown  # sms.ru answered: it did not act on the request
    assert str(code) in str(error) and server_text(code) in str(error)


def test_server_text_wins_over_the_official_one(sms: Sms, client: SmsRuClient) -> None:
    sms.faults({"kind": "api_error", "path": "my/balance", "code": 200, "text": "Ключ неверен"})
    with pytest.raises(SmsRuAuthError) as caught:
        client.balance()
    assert caught.value.text == "Ключ неверен"


def test_unknown_code_is_the_base_class() -> None:
    error = error_for_code(999, None, "sms/send")
    assert type(error) is SmsRuError and error.code == 999
    assert type(error_for_code(None)) is SmsRuError


def test_per_number_error_builds_the_typed_error(sms: Sms, client: SmsRuClient) -> None:
    client.stoplist_add("79161234568")
    result = client.send(["79161234567", "79161234568", "12"], "x")
    ok, stopped, bad = result.recipients
    assert ok.error is None
    assert isinstance(stopped.error, SmsRuRecipientError) and stopped.error.code == 209
    assert isinstance(bad.error, SmsRuRecipientError) and bad.error.code == 202
    assert [r.phone for r in result.rejected] == ["79161234568", "12"]


# -- each code the emulator produces on its own, seen through the client -----------------


def test_200_wrong_api_id(sms: Sms) -> None:
    with sms.client(api_id="not-the-key") as client:
        for call in (client.balance, lambda: client.send("79161234567", "x"), client.stoplist_get):
            with pytest.raises(SmsRuAuthError) as caught:
                call()
            assert caught.value.code == 200
    assert sms.messages() == []


def test_201_insufficient_funds_sends_nothing(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(balance=Decimal("2.00"))
    with sms.client() as client, pytest.raises(SmsRuFundsError):
        client.send(["79161234567", "79161234568"], "x")  # 3.00 needed
    assert sms.messages() == []
    with sms.client() as client:
        assert client.balance() == Decimal("2.00")


def test_202_bad_numbers(sms: Sms, client: SmsRuClient) -> None:
    result = client.send(["12345", "79161234567"], "x")
    assert [r.code for r in result.recipients] == [202, 100]
    assert sms.call("sms/send", to="", msg="x")["status_code"] == 202  # no numbers at all: top level
    with pytest.raises(SmsRuRecipientError):
        client.stoplist_add("12")


def test_203_no_text(sms: Sms, client: SmsRuClient) -> None:
    with pytest.raises(SmsRuMessageError) as caught:
        client.send("79161234567", "")
    assert caught.value.code == 203
    per_number = client.send_each({"79161234567": "", "79161234568": "ok"})
    assert [r.code for r in per_number.recipients] == [203, 100]


def test_204_sender_not_approved(sms: Sms, client: SmsRuClient) -> None:
    with pytest.raises(SmsRuSenderError) as caught:
        client.send("79161234567", "x", sender="Unknown")
    assert caught.value.code == 204
    assert sms.messages() == []


def test_205_more_than_eight_parts(sms: Sms, client: SmsRuClient) -> None:
    result = client.send(["79161234567"], "ж" * 537)
    assert result.recipients[0].code == 205
    assert isinstance(result.recipients[0].error, SmsRuMessageError)
    assert client.cost("79161234567", "ж" * 537).recipients[0].code == 205
    eight = client.send("79161234567", "ж" * 536)
    assert eight.recipients[0].accepted and eight.balance == Decimal("88.00")


def test_206_daily_limit(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(daily_limit=3)
    with sms.client() as client:
        client.send(["79161234567", "79161234568"], "x")
        with pytest.raises(SmsRuLimitError) as caught:
            client.send(["79161234569", "79161234570"], "x")  # 4 > 3: nothing of it is sent
        assert caught.value.code == 206
        assert client.send("79161234569", "x").recipients[0].accepted  # exactly 3 is fine
        assert client.limit().used_today == 3
        sms.advance(86400)  # a new Moscow day
        assert client.limit().used_today == 0
        assert client.send("79161234569", "x").recipients[0].accepted


def test_207_no_route(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(no_route_prefixes=["7999"])
    with sms.client() as client:
        result = client.send(["79991234567", "79161234567"], "x")
    assert [r.code for r in result.recipients] == [207, 100]


def test_208_bad_time(sms: Sms, client: SmsRuClient) -> None:
    now = int(sms.emulator.clock.now())
    with pytest.raises(SmsRuRequestError) as caught:
        client.send("79161234567", "x", at=now + 61 * 86400)
    assert caught.value.code == 208
    assert sms.call("sms/send", to="79161234567", msg="x", time="tomorrow")["status_code"] == 208
    assert sms.call("sms/send", to="79161234567", msg="x", ttl="0")["status_code"] == 208


def test_209_own_stop_list(sms: Sms, client: SmsRuClient) -> None:
    client.stoplist_add("79161234567", "просил не писать")
    assert client.send("79161234567", "x").recipients[0].code == 209
    client.stoplist_del("79161234567")
    assert client.send("79161234567", "x").recipients[0].accepted


def test_211_unknown_method(sms: Sms) -> None:
    reply = sms.call("sms/explode")
    assert (reply["status"], reply["status_code"]) == ("ERROR", 211)
    assert sms.call("")["status_code"] == 211


def test_212_text_not_utf8(sms: Sms) -> None:
    body = f"api_id={API_ID}&json=1&to=79161234567&msg=%CF%F0%E8%E2%E5%F2"  # "Привет" in cp1251
    reply = sms.raw("sms/send", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.json()["status_code"] == 212
    assert sms.messages() == []


def test_212_when_a_character_is_split_across_parameters(sms: Sms) -> None:
    # "П" is %D0%9F: cut in two by "&", neither parameter is UTF-8 though the bytes joined are
    body = f"api_id={API_ID}&json=1&to=79161234567&msg=%D0&x=%9F"
    reply = sms.raw("sms/send", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.json()["status_code"] == 212
    whole = f"api_id={API_ID}&json=1&to=79161234567&msg=%D0%9F"
    reply = sms.raw("sms/send", content=whole, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.json()["status_code"] == 100


def test_213_or_207_for_more_than_100_numbers(make_sms) -> None:  # type: ignore[no-untyped-def]
    numbers = ",".join(f"7916{n:07d}" for n in range(101))
    old = make_sms(too_many_mode="207")
    reply = old.call("sms/send", to=numbers, msg="x")
    assert reply["status_code"] == 100 and len(reply["sms"]) == 101
    assert {e["status_code"] for e in reply["sms"].values()} == {207}
    assert "более 100 номеров" in next(iter(reply["sms"].values()))["status_text"]
    new = make_sms(too_many_mode="213")
    assert new.call("sms/send", to=numbers, msg="x")["status_code"] == 213
    assert old.messages() == [] and new.messages() == []


def test_214_215_216(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(russia_only=True, global_stoplist=["79160000000"], forbidden_words=["казино"])
    with sms.client() as client:
        result = client.send(["380501234567", "79160000000", "79161234567"], "x")
        assert [r.code for r in result.recipients] == [214, 215, 100]
        assert client.send("79161234567", "Лучшее КАЗИНО").recipients[0].code == 216


def test_221_account_without_senders(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(senders=[])
    with sms.client() as client:
        result = client.send(["79161234567"], "x")
        entry = result.recipients[0]
        assert (entry.ok, entry.code) == (False, 221)
        assert isinstance(entry.error, SmsRuSenderError)
        assert entry.sms_id  # the real quirk: an ERROR entry with an sms_id…
        assert not entry.accepted  # …which is not an accepted message
        assert client.balance() == Decimal("100")
        assert client.senders() == []
    assert sms.messages() == []


def test_230_per_number_daily_limit(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(per_number_daily_limit=2)
    with sms.client() as client:
        codes = [client.send(["79161234567", "79161234568"], f"m{i}").recipients[0].code for i in range(3)]
        assert codes == [100, 100, 230]
        assert client.send("79161234568", "m3").recipients[0].code == 230
        assert client.send("79161234569", "m3").recipients[0].accepted


def test_231_232_identical_texts(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(same_text_per_minute=1, same_text_per_day=2)
    with sms.client() as client:
        assert client.send("79161234567", "same").recipients[0].code == 100
        assert client.send("79161234567", "same").recipients[0].code == 231
        assert client.send("79161234567", "other").recipients[0].code == 100
        sms.advance(61)
        assert client.send("79161234567", "same").recipients[0].code == 100
        sms.advance(61)
        assert client.send("79161234567", "same").recipients[0].code == 232


def test_901_902_callbacks(client: SmsRuClient) -> None:
    with pytest.raises(SmsRuCallbackError) as bad_url:
        client.callback_add("ftp://example.org/cb")
    assert bad_url.value.code == 901
    with pytest.raises(SmsRuCallbackError) as missing:
        client.callback_del("http://127.0.0.1:9/never-added")
    assert missing.value.code == 902
