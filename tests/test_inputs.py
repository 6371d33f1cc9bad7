"""One parser for ids and JSON bodies (issue 12, point 13): never a 500 from input."""

from __future__ import annotations

import pytest

from clinic.inputs import MAX_ID, BadJson, nesting_depth, parse_id, parse_json, parse_json_object


@pytest.mark.parametrize("raw", ["²", "١٢٣", "1²", "-1", "0", "+5", " ", "", "1.0", "1e3", str(MAX_ID + 1),
                                 "9" * 40, None, True, 0, -3, 2.0, [1]])
def test_ids_are_ascii_digits_in_range(raw: object) -> None:
    assert parse_id(raw) is None


def test_good_ids() -> None:
    assert parse_id("42") == 42 and parse_id(" 7 ") == 7 and parse_id(MAX_ID) == MAX_ID


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(BadJson, match="вложенность"):
        parse_json(deep)
    assert nesting_depth('{"a": "[[[[[[", "b": [1, {"c": 2}]}') == 3  # brackets in strings do not count
    assert parse_json('{"a": [[[1]]]}') == {"a": [[[1]]]}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"\xff\xfe", "UTF-8"),
        ('{"id": "\\ud800"}', "суррогат"),
        ('{"id": "x", "\\udfff": 1}', "суррогат"),
        ('{"n": NaN}', "Некорректный JSON"),
        ("{", "Некорректный JSON"),
    ],
)
def test_bad_bodies(raw: bytes | str, needle: str) -> None:
    with pytest.raises(BadJson, match=needle):
        parse_json(raw)


def test_objects_and_byte_order_marks() -> None:
    assert parse_json_object("\ufeff{\"a\": \"😀 \\ud83d\\ude00\"}".encode()) == {"a": "😀 😀"}
    with pytest.raises(BadJson, match="JSON-объектом"):
        parse_json_object("[]")
    assert parse_json('{"id": "\\ud800"}', surrogates_ok=True) == {"id": "\ud800"}
