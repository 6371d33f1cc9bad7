"""Every client method against the running emulator: what is sent and what comes back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from clinic.smsru import (
    Exchange,
    SmsRuAuthError,
    SmsRuClient,
    TooManyRecipientsError,
    clean_phone,
)

from .conftest import START
from .support import API_ID, Sms


def test_send_to_list_same_text(sms: Sms, client: SmsRuClient) -> None:
    result = client.send(["+7 (916) 123-45-67", "89161234568"], "Запись подтверждена")
    assert [r.phone for r in result.recipients] == ["79161234567", "89161234568"]
    # sms.ru keys the reply by the number as it normalised it; the client pairs them up.
    assert [r.key for r in result.recipients] == ["79161234567", "79161234568"]
    assert all(r.ok and r.accepted and r.code == 100 and r.error is None for r in result.recipients)
    assert result.balance == Decimal("97.00")
    sent = sms.messages()
    assert {m["phone"] for m in sent} == {"79161234567", "79161234568"}
    assert {m["text"] for m in sent} == {"Запись подтверждена"}
    assert {m["sms_id"] for m in sent} == {r.sms_id for r in result.recipients}
    assert result.for_phone("+7 916 123 45 68") is result.recipients[1]
    assert result.for_phone("9161234567") is result.recipients[0]
    assert result.for_phone("70000000000") is None


def test_send_single_number_string(sms: Sms, client: SmsRuClient) -> None:
    result = client.send("79161234567", "Hi")
    assert len(result.accepted) == 1 and not result.rejected


def test_send_each_per_number_texts(sms: Sms, client: SmsRuClient) -> None:
    result = client.send_each(
        {"79161234567": "Иванов, приём в 10:00", "79161234568": "Петров, приём в 11:00"}
    )
    assert len(result.accepted) == 2
    by_phone = {m["phone"]: m["text"] for m in sms.messages()}
    assert by_phone == {"79161234567": "Иванов, приём в 10:00", "79161234568": "Петров, приём в 11:00"}


def test_send_options_reach_the_service(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(senders=["Klinika", "Doctor"])
    with sms.client(default_sender="Doctor") as client:
        at = datetime.fromtimestamp(START + 3600, tz=UTC)
        result = client.send("79161234567", "Привет", ttl=60, daytime=True, translit=True, at=at)
        assert result.recipients[0].accepted
        (message,) = sms.messages()
        assert message["sender"] == "Doctor"
        assert message["ttl"] == 60 and message["daytime"] and message["translit"]
        assert message["text"] == "Privet"  # transliterated by the service
        assert message["start_at"] == START + 3600
        client.send("79161234567", "x", sender="Klinika")
        assert sms.messages()[-1]["sender"] == "Klinika"


def test_request_fields_partner_id_and_test_flag(sms: Sms) -> None:
    seen: list[Exchange] = []
    with sms.client(on_exchange=seen.append, test_mode=True) as client:
        client.send("79161234567", "x")
    assert "partner_id" not in seen[0].request  # no affiliate id unless configured
    assert seen[0].request["json"] == "1" and seen[0].request["test"] == "1"
    seen.clear()
    with sms.client(on_exchange=seen.append, partner_id="12345") as client:
        client.balance()
    assert seen[0].request["partner_id"] == "12345"
    assert "test" not in seen[0].request


def test_test_mode_sends_nothing_and_charges_nothing(sms: Sms) -> None:
    with sms.client(test_mode=True) as client:
        result = client.send(["79161234567", "79161234568"], "Проверка")
        assert result.test and len(result.accepted) == 2
        assert client.balance() == Decimal("100")
        status = client.status([r.sms_id for r in result.accepted if r.sms_id])
    assert all(not s.found for s in status.messages.values())
    assert {m["test"] for m in sms.messages()} == {True}


def test_status_many_ids_and_progression(sms: Sms, client: SmsRuClient) -> None:
    sent = client.send(["79161234567", "79161234568"], "Hello")
    ids = [r.sms_id for r in sent.accepted if r.sms_id]
    first = client.status(ids)
    assert [first.messages[i].code for i in ids] == [100, 100]
    assert all(first.messages[i].pending and not first.messages[i].final for i in ids)
    assert first.messages[ids[0]].cost == Decimal("1.5")
    assert first.balance == Decimal("97")
    sms.advance(1)
    assert client.status(ids[0]).messages[ids[0]].code == 101
    sms.advance(2)
    assert client.status(ids[0]).messages[ids[0]].code == 102
    sms.advance(2)
    final = client.status(ids)
    assert all(final.messages[i].delivered and final.messages[i].final for i in ids)
    assert final.messages[ids[0]].text == "Сообщение доставлено"


def test_status_refuses_more_than_100_ids(client: SmsRuClient) -> None:
    with pytest.raises(TooManyRecipientsError):
        client.status([f"000000-{n}" for n in range(101)])
    with pytest.raises(ValueError):
        client.status([])


def test_cost_list_and_per_number(client: SmsRuClient) -> None:
    result = client.cost(["79161234567", "79161234568"], "ж" * 71)
    assert result.total_sms == 4 and result.total_cost == Decimal("6.0")
    assert [(r.parts, r.cost) for r in result.recipients] == [(2, Decimal("3.0")), (2, Decimal("3.0"))]
    each = client.cost_each({"79161234567": "a" * 161, "79161234568": "short"})
    assert [r.parts for r in each.recipients] == [2, 1]
    assert each.for_phone("79161234568") is each.recipients[1]
    translit = client.cost("79161234567", "ж" * 100, translit=True)
    assert translit.recipients[0].parts == 2  # "zh" × 100 = 200 GSM-7 characters


def test_cost_does_not_charge(client: SmsRuClient) -> None:
    client.cost("79161234567", "Hello")
    assert client.balance() == Decimal("100")


def test_account_methods(sms: Sms, client: SmsRuClient) -> None:
    assert client.balance() == Decimal("100")
    assert client.senders() == ["Klinika"]
    free = client.free()
    assert (free.total_free, free.used_today) == (5, 0)
    before = client.limit()
    assert (before.total_limit, before.used_today, before.remaining) == (1000, 0, 1000)
    client.send(["79161234567", "79161234568"], "x")
    after = client.limit()
    assert (after.used_today, after.remaining) == (2, 998)
    client.auth_check()


def test_auth_check_fails_on_wrong_key(sms: Sms) -> None:
    with sms.client(api_id="wrong-key") as client, pytest.raises(SmsRuAuthError) as caught:
        client.auth_check()
    assert caught.value.code == 301


def test_stoplist_round_trip(client: SmsRuClient) -> None:
    assert client.stoplist_get() == {}
    client.stoplist_add("+7 916 123-45-67", "жалоба")
    client.stoplist_add("79161234568")
    assert client.stoplist_get() == {"79161234567": "жалоба", "79161234568": ""}
    client.stoplist_del("79161234567")
    assert client.stoplist_get() == {"79161234568": ""}


def test_callback_round_trip(client: SmsRuClient) -> None:
    assert client.callback_get() == []
    assert client.callback_add("http://127.0.0.1:9/a") == ["http://127.0.0.1:9/a"]
    assert client.callback_add("https://127.0.0.1:9/b") == ["http://127.0.0.1:9/a", "https://127.0.0.1:9/b"]
    assert client.callback_del("http://127.0.0.1:9/a") == ["https://127.0.0.1:9/b"]
    assert client.callback_get() == ["https://127.0.0.1:9/b"]
    # Deleting the last one: the real reply drops the "callback" key (smsru.md §7).
    assert client.callback_del("https://127.0.0.1:9/b") is None
    assert client.callback_get() == []


def test_client_refuses_more_than_100_recipients(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(balance=Decimal(1000))
    client = sms.client()
    phones = [f"7916{n:07d}" for n in range(101)]
    with pytest.raises(TooManyRecipientsError):
        client.send(phones, "x")
    with pytest.raises(TooManyRecipientsError):
        client.send_each(dict.fromkeys(phones, "x"))
    with pytest.raises(TooManyRecipientsError):
        client.cost(phones, "x")
    assert sms.messages() == []
    # Exactly 100 is fine; duplicates count once.
    assert len(client.send(phones[:100] + phones[:5], "x").accepted) == 100


def test_client_validates_arguments_before_sending(sms: Sms, client: SmsRuClient) -> None:
    with pytest.raises(ValueError):
        client.send([], "x")
    with pytest.raises(ValueError):
        client.send("no digits", "x")
    for ttl in (0, 1441):
        with pytest.raises(ValueError):
            client.send("79161234567", "x", ttl=ttl)
    with pytest.raises(ValueError):
        client.send("79161234567", "x", at=datetime(2026, 6, 1, 12, 0))  # naive: ambiguous zone
    assert sms.messages() == []
    with pytest.raises(ValueError):
        SmsRuClient("")


def test_clean_phone() -> None:
    assert clean_phone("+7 (916) 123-45-67") == "79161234567"
    with pytest.raises(ValueError):
        clean_phone("---")


def test_base_url_trailing_slash_and_repr(sms: Sms) -> None:
    with sms.client(base_url=sms.url + "/") as client:
        assert client.balance() == Decimal("100")
        assert client.base_url == sms.url
        assert API_ID not in repr(client)
