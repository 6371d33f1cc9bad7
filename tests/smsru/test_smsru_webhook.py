"""Reading sms.ru callbacks (clinic/smsru/webhook.py), independent of the emulator."""

from __future__ import annotations

import hashlib

from clinic.smsru.webhook import (
    REPLY,
    CallcheckStatusEvent,
    HeartbeatEvent,
    SmsStatusEvent,
    dedupe_key,
    parse_form,
    parse_record,
    records_from_form,
    sign,
    verify,
)

KEY = "0A1B2C3D-0000-1111-2222-333344445555"


def _form(records: list[str], key: str = KEY) -> dict[str, str]:
    form = {f"data[{i}]": r for i, r in enumerate(records)}
    form["hash"] = hashlib.sha256((key + "".join(records)).encode()).hexdigest()
    return form


def test_sign_matches_the_documented_formula() -> None:
    records = ["test\n1782404811", "sms_status\n000000-1\n103\n1782404881"]
    assert sign(KEY, records) == hashlib.sha256((KEY + "".join(records)).encode()).hexdigest()


def test_verify_accepts_good_and_rejects_tampered() -> None:
    form = _form(["sms_status\n000000-1\n103\n1782404881"])
    assert verify(KEY, form)
    assert not verify("another-key", form)
    assert not verify(KEY, {**form, "data[0]": "sms_status\n000000-1\n104\n1782404881"})
    assert not verify(KEY, {**form, "hash": ""})
    assert not verify(KEY, {"hash": form["hash"]})
    assert verify(KEY, {**form, "hash": form["hash"].upper()})


def test_records_are_in_numeric_order() -> None:
    records = [f"test\n{n}" for n in range(12)]
    shuffled = dict(reversed(list(_form(records).items())))
    assert records_from_form(shuffled) == records  # data[10] after data[9], not after data[1]
    assert verify(KEY, shuffled)


def test_parse_the_production_shaped_payload() -> None:
    form = _form(
        [
            "test\n1782404811",
            "callcheck_status\n202626-48053517\n401\n1782404881",
            "sms_status\n202626-1000001\n103\n1782404890",
            "something_new\nx\ny",
            "sms_status\n\n103\n1",  # no id: malformed
            "sms_status\r\n202626-1000002\r\n104\r\n1782404891",
        ]
    )
    assert parse_form(form) == [
        HeartbeatEvent(at=1782404811),
        CallcheckStatusEvent(check_id="202626-48053517", code=401, at=1782404881),
        SmsStatusEvent(sms_id="202626-1000001", code=103, at=1782404890),
        SmsStatusEvent(sms_id="202626-1000002", code=104, at=1782404891),
    ]


def test_parse_record_edge_cases() -> None:
    assert parse_record("test") == HeartbeatEvent(at=None)
    assert parse_record("sms_status\n1-1\nabc\n1") is None
    assert parse_record("sms_status\n1-1\n102") == SmsStatusEvent("1-1", 102, None)
    assert parse_record("") is None


def test_dedupe_key_collapses_resent_events() -> None:
    first = parse_form(_form(["sms_status\n1-1\n103\n5"]))
    again = parse_form(_form(["sms_status\n1-1\n103\n5"]))
    later = parse_form(_form(["sms_status\n1-1\n103\n6"]))
    assert dedupe_key(first[0]) == dedupe_key(again[0]) != dedupe_key(later[0])
    assert dedupe_key(HeartbeatEvent(1)) != dedupe_key(CallcheckStatusEvent("1", 401, 1))


def test_reply_is_100() -> None:
    assert REPLY == "100"
