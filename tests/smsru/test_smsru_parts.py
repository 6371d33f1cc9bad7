"""SMS part counting (clinic/smsru/parts.py) and the 100-per-request batching helper."""

from __future__ import annotations

import pytest

from clinic.smsru import MAX_PARTS, batches, count_parts
from clinic.smsru.parts import is_gsm7, max_length

CYR = "ж"
LAT = "a"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("", "gsm7", 0, 0),
        (LAT, "gsm7", 1, 1),
        (LAT * 160, "gsm7", 160, 1),
        (LAT * 161, "gsm7", 161, 2),
        (LAT * 306, "gsm7", 306, 2),
        (LAT * 307, "gsm7", 307, 3),
        (LAT * 1224, "gsm7", 1224, 8),
        (LAT * 1225, "gsm7", 1225, 9),
        (CYR, "ucs2", 1, 1),
        (CYR * 70, "ucs2", 70, 1),
        (CYR * 71, "ucs2", 71, 2),
        (CYR * 134, "ucs2", 134, 2),
        (CYR * 135, "ucs2", 135, 3),
        (CYR * 536, "ucs2", 536, 8),
        (CYR * 537, "ucs2", 537, 9),
        # One Cyrillic letter turns a whole Latin text into UCS-2.
        (LAT * 69 + CYR, "ucs2", 70, 1),
        (LAT * 70 + CYR, "ucs2", 71, 2),
        # Extension characters cost two septets each.
        ("{" * 80, "gsm7", 160, 1),
        ("{" * 81, "gsm7", 162, 2),
        ("€" * 80, "gsm7", 160, 1),
        # An escape pair is never split across parts: 152 + "{" cannot close part one.
        (LAT * 152 + "{" + LAT * 152, "gsm7", 306, 3),
        (LAT * 151 + "{" + LAT * 153, "gsm7", 306, 2),
        # Emoji are outside the BMP: two UTF-16 units, never split.
        ("😀" * 35, "ucs2", 70, 1),
        ("😀" * 36, "ucs2", 72, 2),
        (CYR * 66 + "😀" + CYR * 66, "ucs2", 134, 3),
        (CYR * 65 + "😀" + CYR * 67, "ucs2", 134, 2),
        # GSM-7 accented letters stay 7-bit; others force UCS-2.
        ("é" * 160, "gsm7", 160, 1),
        ("ê" * 70, "ucs2", 70, 1),
        ("Запись к врачу 12.03 в 10:00, каб. 5", "ucs2", 36, 1),
        ("Zapis k vrachu 12.03 v 10:00, kab. 5", "gsm7", 36, 1),
    ],
)
def test_count_parts_table(text: str, encoding: str, units: int, parts: int) -> None:
    counted = count_parts(text)
    assert (counted.encoding, counted.units, counted.parts) == (encoding, units, parts)


def test_limits_per_encoding() -> None:
    assert (count_parts(LAT).single_limit, count_parts(LAT * 200).part_limit) == (160, 153)
    assert (count_parts(CYR).single_limit, count_parts(CYR * 200).part_limit) == (70, 67)
    assert max_length("ucs2") == 536 and max_length("gsm7") == 1224
    assert max_length("ucs2", 1) == 70 and max_length("gsm7", 1) == 160


def test_too_long_is_more_than_eight_parts() -> None:
    assert MAX_PARTS == 8
    assert not count_parts(CYR * 536).too_long
    assert count_parts(CYR * 537).too_long


def test_is_gsm7() -> None:
    assert is_gsm7("Hello, world! @£$¥ {}[]~^|€\\")
    assert not is_gsm7("Привет")
    assert not is_gsm7("`")  # the backtick is not in GSM 03.38


def test_batches_split_in_order_and_refuse_oversize() -> None:
    chunks = list(batches(range(250)))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert [x for c in chunks for x in c] == list(range(250))
    assert list(batches([], 10)) == []
    with pytest.raises(ValueError):
        list(batches(range(5), 101))
