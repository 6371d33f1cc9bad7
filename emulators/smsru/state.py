"""The emulated account: balance, messages, stop list, callbacks, usage counters.

One instance lives in the Emulator and every read or write of it happens under
``Emulator.lock``; this module only holds the data and small pure helpers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any


@dataclass
class Message:
    sms_id: str
    phone: str
    text: str
    sender: str | None
    parts: int
    cost: Decimal
    created_at: float
    start_at: float  # `time` param or created_at: when delivery starts
    ttl: int | None
    daytime: bool
    translit: bool
    test: bool
    code: int = 100
    status_at: float = 0.0
    history: list[tuple[int, float]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "sms_id": self.sms_id,
            "phone": self.phone,
            "text": self.text,
            "sender": self.sender,
            "parts": self.parts,
            "cost": str(self.cost),
            "created_at": self.created_at,
            "start_at": self.start_at,
            "ttl": self.ttl,
            "daytime": self.daytime,
            "translit": self.translit,
            "test": self.test,
            "status_code": self.code,
            "status_at": self.status_at,
            "history": [{"status_code": code, "at": at} for code, at in self.history],
        }


@dataclass
class AccountState:
    balance: Decimal
    callbacks: list[str]
    next_id: int = 1_000_000
    messages: dict[str, Message] = field(default_factory=dict)
    stoplist: dict[str, str] = field(default_factory=dict)
    sent_per_day: Counter[date] = field(default_factory=Counter)
    sent_per_phone_day: Counter[tuple[date, str]] = field(default_factory=Counter)
    same_text_times: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def new_sms_id(self, account_number: int) -> str:
        self.next_id += 1
        return f"{account_number:06d}-{self.next_id}"


class Params:
    """Request parameters from the query string and the form body, in order.

    sms.ru accepts either place and a mix of both (§1), so both are merged, body last.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        self._last = dict(self.pairs)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._last.get(key, default)

    def flag(self, key: str) -> bool:
        return (self._last.get(key) or "").strip() == "1"

    def __contains__(self, key: str) -> bool:
        return key in self._last
