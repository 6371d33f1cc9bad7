"""The sms.ru emulator against worked examples computed by hand from smsru.md.

The expected values below are written out, not computed by our code: hashes with
``printf '…' | sha256sum`` on the concatenation §10 prescribes, part counts from the GSM
rules of §11. Where the client has the same piece of knowledge (the callback hash, the part
counter), it is checked against the same example in a separate case, so a misreading shows
up as one side failing rather than both agreeing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

from clinic.smsru import count_parts
from clinic.smsru import webhook as client_webhook
from emulators.smsru import codes
from emulators.smsru.parts import sms_parts
from emulators.smsru.signing import callback_hash

from .conftest import START
from .support import API_ID, Receiver, Sms

# §10: hash = sha256_hex(api_id + data[0] + data[1] + …)
#   printf 'abctest\n1700000000sms_status\n000001-1\n103\n1700000005' | sha256sum
HASH_ABC = "ece2170c11b9968d12dcca1237fbbf61b2aa65d332e85d857000cbb577022365"
RECORDS_ABC = ["test\n1700000000", "sms_status\n000001-1\n103\n1700000005"]

Signer = Callable[[str, Sequence[str]], str]
SIGNERS: dict[str, Signer] = {"emulator": callback_hash, "client": client_webhook.sign}


@pytest.mark.parametrize("side", sorted(SIGNERS))
def test_callback_hash_worked_example(side: str) -> None:
    sign = SIGNERS[side]
    assert sign("abc", RECORDS_ABC) == HASH_ABC
    # Order matters: it is a concatenation in key order, not a set.
    assert sign("abc", RECORDS_ABC[::-1]) != HASH_ABC


def test_callbacks_on_the_wire_carry_the_worked_hash(sms: Sms, receiver: Receiver) -> None:
    sms.call("callback/add", url=receiver.url)  # sms.ru tests a new handler at once (§7)
    sms.advance(0)
    assert receiver.wait_for(lambda got: len(got) == 1)
    # printf '5A1B2C3D-7777-4E5F-9A8B-0123456789ABtest\n1779958800' | sha256sum
    assert receiver.received[0].form == {
        "data[0]": f"test\n{int(START)}",
        "hash": "38947777c23e1149c6262a1503e19250727df447cc99604bc8c9df900a95961e",
    }

    reply = sms.call("sms/send", to="79161234567", msg="Привет")
    assert reply["sms"]["79161234567"]["sms_id"] == "000000-1000001"  # "%06d-%d", as real ids look (§2.2)
    sms.advance(5)  # delivery steps after 1, 2 and 2 s: 101, 102, 103 (one batch)
    assert receiver.wait_for(lambda got: len(got) == 2)
    # printf '<API_ID>sms_status\n000000-1000001\n101\n1779958801'\
    #   'sms_status\n000000-1000001\n102\n1779958803sms_status\n000000-1000001\n103\n1779958805' | sha256sum
    assert receiver.received[1].form == {
        "data[0]": "sms_status\n000000-1000001\n101\n1779958801",
        "data[1]": "sms_status\n000000-1000001\n102\n1779958803",
        "data[2]": "sms_status\n000000-1000001\n103\n1779958805",
        "hash": "809803554ad858b018cbd67a5dfd3ca249bf259358cc0fe00d97d9f59e2dbdad",
    }
    # And the client's verifier takes what the emulator sent.
    for post in receiver.received:
        assert client_webhook.check_signature(API_ID, post.form) is None


# §11: 70 UCS-2 units (any Cyrillic) or 160 GSM-7 septets in one SMS, 67 / 153 per part
# when split, at most 8 parts: 536 Cyrillic or 1224 Latin. GSM 03.38: "{" is ESC + septet.
CYR, LAT = "ж", "a"
PART_EXAMPLES: list[tuple[str, str, int]] = [
    ("one Cyrillic letter", CYR, 1),
    ("70 Cyrillic", CYR * 70, 1),
    ("71 Cyrillic", CYR * 71, 2),  # 67 + 4
    ("134 Cyrillic", CYR * 134, 2),  # 67 · 2
    ("135 Cyrillic", CYR * 135, 3),
    ("536 Cyrillic", CYR * 536, 8),  # 67 · 8, the documented maximum
    ("537 Cyrillic", CYR * 537, 9),  # over 8 parts: 205
    ("160 Latin", LAT * 160, 1),
    ("161 Latin", LAT * 161, 2),
    ("1224 Latin", LAT * 1224, 8),  # 153 · 8
    ("1225 Latin", LAT * 1225, 9),
    ("one Cyrillic letter makes it UCS-2", LAT * 70 + CYR, 2),  # 71 units
    ("80 braces are 160 septets", "{" * 80, 1),
    ("81 braces are 162 septets", "{" * 81, 2),
    # 152 septets + "{" (2) would be 154 > 153: the pair opens part two, 152 + 153 + 1.
    ("an escape pair is not split", LAT * 152 + "{" + LAT * 152, 3),
    ("the pair fits at 151", LAT * 151 + "{" + LAT * 153, 2),
]


@pytest.mark.parametrize(
    ("text", "parts"), [(t, p) for _, t, p in PART_EXAMPLES], ids=[n for n, _, _ in PART_EXAMPLES]
)
def test_emulator_part_counter(text: str, parts: int) -> None:
    assert sms_parts(text) == parts


@pytest.mark.parametrize(
    ("text", "parts"), [(t, p) for _, t, p in PART_EXAMPLES], ids=[n for n, _, _ in PART_EXAMPLES]
)
def test_client_part_counter(text: str, parts: int) -> None:
    assert count_parts(text).parts == parts


def test_sms_cost_answers_the_worked_part_counts(sms: Sms) -> None:
    """sms/cost over HTTP with the examples per number (to[phone]=text), price 1.50 a part."""
    phones = {f"7916{i:07d}": (text, parts) for i, (_, text, parts) in enumerate(PART_EXAMPLES)}
    fields = {f"to[{phone}]": text for phone, (text, _) in phones.items()}
    reply = sms.call("sms/cost", **fields)
    for phone, (_, parts) in phones.items():
        entry = reply["sms"][phone]
        if parts > 8:
            assert (entry["status"], entry["status_code"]) == ("ERROR", 205), phone
        else:
            assert (entry["status_code"], entry["sms"]) == (100, parts), phone
            assert Decimal(str(entry["cost"])) == Decimal("1.50") * parts


def test_reply_is_php_json_with_escaped_slashes(sms: Sms, receiver: Receiver) -> None:
    """§1: 4-space pretty JSON, "/" escaped as "\\/"; §7: add returns the whole list."""
    response = sms.raw("callback/add", {"api_id": API_ID, "json": "1", "url": receiver.url})
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["sms-api"] == "CERN/3.0"
    escaped = receiver.url.replace("/", "\\/")
    assert f'"callback": [\n        "{escaped}"\n    ]' in response.text
    assert response.json() == {"status": "OK", "status_code": 100, "callback": [receiver.url]}


def test_send_reply_and_legacy_plain_text(sms: Sms) -> None:
    """§2.2 (per-number map, top level OK even with a failed number, sms_id NNNNNN-N) and
    §2.4 (without json=1: code, one line per recipient in `to` order, then balance=)."""
    assert sms.call("stoplist/add", stoplist_phone="74993221627", stoplist_text="note")["status_code"] == 100
    reply = sms.call("sms/send", to="79255070602,74993221627", msg="Привет")
    assert (reply["status"], reply["status_code"]) == ("OK", 100)
    ok, refused = reply["sms"]["79255070602"], reply["sms"]["74993221627"]
    assert ok["status"] == "OK" and re.fullmatch(r"\d{6}-\d+", ok["sms_id"])
    assert (refused["status"], refused["status_code"]) == ("ERROR", 209)

    text = sms.raw("sms/send", {"api_id": API_ID, "to": "79255070602,74993221627", "msg": "Привет"}).text
    lines = text.split("\n")
    assert lines[0] == "100" and re.fullmatch(r"\d{6}-\d+", lines[1]) and lines[2] == "209"
    assert lines[3].startswith("balance=") and Decimal(lines[3].removeprefix("balance=")) == Decimal("97")
    assert len(lines) == 4


def test_code_tables_follow_the_reference() -> None:
    """§9.1 and §9.2 code lists, and the wording the reference quotes, verbatim."""
    assert set(codes.DELIVERY_TEXTS) == {-1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 110, 150}
    assert set(codes.ERROR_TEXTS) == {
        200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217,
        220, 221, 230, 231, 232, 233, 300, 301, 302, 303, 304, 305, 500, 501, 502, 503, 504, 505,
        506, 507, 508, 550, 901, 902,
    }  # fmt: skip
    quoted = {
        -1: "Сообщение не найдено",
        103: "Сообщение доставлено",
        104: "Не может быть доставлено: время жизни истекло",
        200: "Неправильный api_id",
        201: "Не хватает средств на лицевом счету",
        202: "Неправильно указан номер телефона получателя, либо на него нет маршрута",
        203: "Нет текста сообщения",
        205: "Сообщение слишком длинное (превышает 8 СМС)",
        207: "На этот номер нет маршрута для доставки сообщений",
        208: "Параметр time указан неправильно",
        210: "Используется GET, где необходимо использовать POST",
        211: "Метод не найден",
        213: "Указано более 5000 номеров в списке получателей",
        220: "Сервис временно недоступен, попробуйте чуть позже",
        901: "Callback: URL неверный (не начинается на http://)",
        902: "Callback: Обработчик не найден (возможно был удален ранее)",
    }
    assert {code: codes.text_for(code) for code in quoted} == quoted
    assert (codes.MAX_RECIPIENTS, codes.MAX_PARTS, codes.CALLBACK_REPLY) == (100, 8, "100")


def test_more_than_100_numbers_get_the_old_207_wording(sms: Sms) -> None:
    """§2.2/§12: over 100 recipients, 207 per number with the older text."""
    numbers = ",".join(f"7916{i:07d}" for i in range(101))
    reply = sms.call("sms/send", to=numbers, msg="Привет")
    entries = reply["sms"]
    assert len(entries) == 101
    assert {(e["status_code"], e["status_text"]) for e in entries.values()} == {
        (207, "На этот номер (или один из номеров) нельзя отправлять сообщения, "
              "либо указано более 100 номеров в списке получателей")
    }  # fmt: skip
