"""The lenient readers behind every reply parser (clinic/smsru/lenient.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clinic.smsru.lenient import as_decimal, as_int, as_mapping, as_str_list, as_text, status_is_ok


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), ("10", 10), (" 7 ", 7), ("-1", -1), (3.0, 3), (Decimal("4.0"), 4), ("2.0", 2),
     (3.5, None), ("x", None), ("", None), (None, None), (True, None), ([1], None)],
)  # fmt: skip
def test_as_int(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1000.0, Decimal("1000.0")), (0.1, Decimal("0.1")), ("4122.56", Decimal("4122.56")), (7, Decimal(7)),
     ("10,25", Decimal("10.25")), (Decimal("1.5"), Decimal("1.5")), ("NaN", None), ("", None), (None, None),
     (False, None), ({}, None)],
)  # fmt: skip
def test_as_decimal(value: object, expected: Decimal | None) -> None:
    assert as_decimal(value) == expected


def test_as_text_mapping_and_lists() -> None:
    assert (as_text("a"), as_text(5), as_text(None), as_text(True), as_text([])) == (
        "a",
        "5",
        None,
        None,
        None,
    )
    assert as_mapping({"a": 1}) == {"a": 1} and as_mapping([]) == {} and as_mapping(None) == {}
    assert as_mapping({1: "x"}) == {"1": "x"}
    assert as_str_list(["a", None, "", 5]) == ["a", "5"]
    assert as_str_list({"0": "a", "1": "b"}) == ["a", "b"]
    assert as_str_list("one") == ["one"] and as_str_list(None) == [] and as_str_list(3) == []


def test_status_is_ok() -> None:
    assert status_is_ok({"status": "OK"}) is True
    assert status_is_ok({"status": "ok", "status_code": 207}) is True  # the flag decides
    assert status_is_ok({"status": "ERROR", "status_code": 100}) is False
    assert status_is_ok({"status_code": "100"}) is True
    assert status_is_ok({"status_code": 207}) is False
    assert status_is_ok({}) is None
    assert status_is_ok({"status_code": 103}, ok_code=None) is True
    assert status_is_ok({"status_code": -1}, ok_code=None) is False
