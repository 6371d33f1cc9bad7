"""The emulator's fast urlencoded parser agrees with the standard library's."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import pytest

from emulators.smsru.form import parse_urlencoded

ALPHABET = "abcXYZ019 +-_.~&=%/?#[]ёЖщ€😀\n"


@pytest.mark.parametrize("seed", range(200))
def test_same_pairs_as_parse_qsl(seed: int) -> None:
    rnd = random.Random(seed)
    pairs = [
        (
            "".join(rnd.choices(ALPHABET, k=rnd.randint(0, 6))),
            "".join(rnd.choices(ALPHABET, k=rnd.randint(0, 20))),
        )
        for _ in range(rnd.randint(0, 8))
    ]
    body = urlencode(pairs).encode()
    parsed, utf8 = parse_urlencoded(body)
    assert utf8
    assert parsed == parse_qsl(body.decode(), keep_blank_values=True)


@pytest.mark.parametrize(
    "body", [b"a=%zz&b=%4", b"a&b=&&c=1", b"to%5B7916%5D=%D0%9F%D1%80%D0%B8+%2B1", b"%41%42=%43+%44", b"="]
)
def test_edge_cases_match_parse_qsl(body: bytes) -> None:
    assert parse_urlencoded(body) == (parse_qsl(body.decode(), keep_blank_values=True), True)


def test_bytes_that_are_not_utf8_are_reported_and_replaced() -> None:
    parsed, utf8 = parse_urlencoded(b"msg=%CF%F0%E8&ok=%D0%9F")
    assert not utf8
    assert parsed == [("msg", "\ufffd\ufffd\ufffd"), ("ok", "П")]
