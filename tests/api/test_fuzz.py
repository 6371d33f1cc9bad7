"""Random values of every type in every documented field of every write: never a 500.

Deterministic (seeded), so a failure reproduces; the values are the kinds of garbage a
misconfigured МИС export produces: wrong types, extreme numbers, odd Unicode, control characters.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from webhooks.api.openapi import OPERATIONS, build_document

from .conftest import Api, at

pytestmark = pytest.mark.db

ROUNDS = 40

STRINGS = [
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "NaN",
    "true",
    "null",
    "2026-02-30",
    "2026-03-01T25:61",
    "9999-12-31",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00-14:00",
    "+7 916 123-45-67",
    "+0000000000000000",
    "\x00",
    "\u202e",
    "\ud83d\ude00",
    "Ё" * 70,
    "x" * 5000,
    "' OR 1=1 --",
    "%_\\",
    "<script>",
    "\r\n",
    "booked",
    "cancelled",
    "doctor",
    "P1",
    "D1",
    "101",
]
NUMBERS = [0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30, 0.5, -0.0, 1e308, 1e-320, 20, 720, 721]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 2 else 5)
    if kind == 0:
        return rng.choice(STRINGS)
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return None
    if kind == 4:
        return at(rng.randrange(-5, 30), rng.randrange(24), rng.choice([0, 15, 30, 45]))
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {"k": _value(rng, depth + 1)}


def _fields(schema_name: str) -> list[str]:
    schema = build_document()["components"]["schemas"][schema_name]
    return list(schema["properties"])


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.body], ids=lambda op: op.operation_id)
def test_random_bodies_never_break_the_api(api: Api, patient: dict, doctor: dict, op: Any) -> None:
    rng = random.Random(op.operation_id)
    appt = api.post(
        "/appointments", {"patient_id": patient["id"], "doctor_id": doctor["id"], "starts_at": at(7, 10)}
    ).get_json()
    path = (
        op.path.replace("{patient_id}", str(patient["id"]))
        .replace("{employee_id}", str(doctor["id"]))
        .replace("{appointment_id}", str(appt["id"]))
        .replace("{external_id}", "FUZZ")
        .replace("{number}", "F1")
        .replace("{code}", "F1")
    )
    names = _fields(op.body)
    for _ in range(ROUNDS):
        chosen = rng.sample(names, rng.randrange(1, len(names) + 1))
        body = {name: _value(rng) for name in chosen}
        query = (
            {"allow_past": rng.choice(["true", "false", "x"])}
            if "allow_past" in {p.name for p in op.query}
            else {}
        )
        r = api.request(op.method.upper(), path, body, query_string=query)
        assert r.status_code in (200, 201, 409, 422), (body, r.status_code, r.get_json())


@pytest.mark.parametrize(
    "op", [op for op in OPERATIONS if op.method == "get" and op.query], ids=lambda op: op.operation_id
)
def test_random_query_parameters_never_break_the_api(api: Api, op: Any) -> None:
    rng = random.Random(op.operation_id)
    names = [p.name for p in op.query] + ["unknown"]
    for _ in range(ROUNDS):
        chosen = rng.sample(names, rng.randrange(1, len(names) + 1))
        # A URL cannot carry lone surrogates at all; the client would refuse to encode them.
        query = {name: str(_value(rng)).encode("utf-8", "replace").decode() for name in chosen}
        r = api.get(op.path, query_string=query)
        assert r.status_code in (200, 422), (query, r.status_code, r.get_json())
