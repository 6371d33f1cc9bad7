"""Typed results of the sms.ru methods.

Per-recipient outcomes keep every field sms.ru sent, and ``error`` builds the typed error
(see errors.py) for a failed entry without raising it, so a mailing can sort its rows with
``isinstance`` while the rest of the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from clinic.smsru import codes
from clinic.smsru.errors import SmsRuBadResponse, SmsRuError, error_for_code


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


@dataclass(frozen=True)
class SendRecipient:
    """One number's outcome of ``sms/send``.

    ``phone`` is the number as the caller passed it (digits only), ``key`` the number as
    sms.ru normalised it in the reply (None when the reply had no entry for it).
    ``sms_id`` is kept even on ERROR entries, because the real service puts one there
    (smsru.md §2.2); only ``accepted`` entries have an id worth polling.
    """

    phone: str
    key: str | None
    ok: bool
    code: int | None
    text: str | None = None
    sms_id: str | None = None
    method: str = "sms/send"
    # sms/send documents no price (smsru.md §2.2; sms/status has it, §3); kept if one comes
    cost: Decimal | None = None

    @property
    def missing(self) -> bool:
        return self.key is None

    @property
    def accepted(self) -> bool:
        return self.ok and bool(self.sms_id)

    @property
    def error(self) -> SmsRuError | None:
        if self.ok:
            return None
        if self.missing:
            return SmsRuBadResponse(
                f"sms.ru {self.method}: no entry for this number in the reply",
                text="нет записи для номера в ответе",
                method=self.method,
            )
        return error_for_code(self.code, self.text, self.method)


@dataclass(frozen=True)
class SendResult:
    recipients: list[SendRecipient]
    balance: Decimal | None
    test: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def accepted(self) -> list[SendRecipient]:
        return [r for r in self.recipients if r.accepted]

    @property
    def rejected(self) -> list[SendRecipient]:
        return [r for r in self.recipients if not r.accepted]

    def for_phone(self, phone: str) -> SendRecipient | None:
        """Find a recipient by any spelling of its number (matched on digits, then last 10)."""
        return _find(self.recipients, phone)


@dataclass(frozen=True)
class CostRecipient:
    phone: str
    key: str | None
    ok: bool
    code: int | None
    text: str | None = None
    cost: Decimal | None = None
    parts: int | None = None

    @property
    def missing(self) -> bool:
        return self.key is None

    @property
    def error(self) -> SmsRuError | None:
        if self.ok:
            return None
        return error_for_code(self.code, self.text or "нет записи для номера в ответе", "sms/cost")


@dataclass(frozen=True)
class CostResult:
    recipients: list[CostRecipient]
    # None when sms.ru left the totals out, as it does when every recipient failed (§4).
    total_cost: Decimal | None
    total_sms: int | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def for_phone(self, phone: str) -> CostRecipient | None:
        return _find(self.recipients, phone)


@dataclass(frozen=True)
class MessageStatus:
    """One id's entry of ``sms/status``; ``code`` is a delivery code (§9.1)."""

    sms_id: str
    code: int | None
    text: str | None = None
    cost: Decimal | None = None
    send_time: int | None = None  # unix; only some replies carry them (§3, unverified)
    status_time: int | None = None

    @property
    def found(self) -> bool:
        return self.code is not None and self.code != codes.NOT_FOUND

    @property
    def pending(self) -> bool:
        return self.code in codes.DELIVERY_PENDING

    @property
    def delivered(self) -> bool:
        return self.code in codes.DELIVERY_DELIVERED

    @property
    def failed(self) -> bool:
        return self.code in codes.DELIVERY_FAILED

    @property
    def final(self) -> bool:
        return self.delivered or self.failed


@dataclass(frozen=True)
class StatusResult:
    messages: dict[str, MessageStatus]
    balance: Decimal | None  # absent when no id was found (§3)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class DailyLimit:
    total_limit: int | None
    used_today: int

    @property
    def remaining(self) -> int | None:
        return None if self.total_limit is None else max(self.total_limit - self.used_today, 0)


@dataclass(frozen=True)
class FreeAllowance:
    total_free: int | None
    used_today: int  # sms.ru sends null until one is used; read as 0


_R = TypeVar("_R", SendRecipient, CostRecipient)


def _find(items: list[_R], phone: str) -> _R | None:
    wanted = _digits(phone)
    for item in items:
        if item.phone == wanted or (item.key is not None and _digits(item.key) == wanted):
            return item
    tail = wanted[-10:]
    for item in items:
        if item.phone[-10:] == tail:
            return item
    return None
