"""Turning sms.ru's JSON replies into results, one function per method.

Every reader is lenient in the ways smsru.md §1–§7 document (loose number types, missing
keys, ``[]`` for empty maps, ``sms_id`` on ERROR entries, a top-level OK over all-failed
recipients) and strict in one: a reply without a recognisable envelope is a
:class:`SmsRuBadResponse`, because acting on a guess would corrupt the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from clinic.smsru.errors import SmsRuBadResponse, error_for_code
from clinic.smsru.lenient import as_decimal, as_int, as_mapping, as_str_list, as_text, status_is_ok
from clinic.smsru.results import (
    CostRecipient,
    CostResult,
    DailyLimit,
    FreeAllowance,
    MessageStatus,
    SendRecipient,
    SendResult,
    StatusResult,
)


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def check_envelope(body: Any, method: str) -> dict[str, Any]:
    """Return the reply as a dict if its top level says OK; raise the typed error otherwise."""
    if not isinstance(body, dict):
        raise SmsRuBadResponse(f"sms.ru {method}: reply is not a JSON object", method=method)
    ok = status_is_ok(body)
    if ok is None:
        raise SmsRuBadResponse(f"sms.ru {method}: reply has neither status nor status_code", method=method)
    if not ok:
        raise error_for_code(as_int(body.get("status_code")), as_text(body.get("status_text")), method)
    return body


def match_keys(requested: Sequence[str], keys: Sequence[str]) -> list[tuple[str, str | None]]:
    """Pair each requested number with the reply key sms.ru used for it.

    sms.ru keys its per-number map by the number as *it* normalised it (§2.2), which need
    not be what we sent. Pair on exact digits first, then on the last 10 digits (the
    national number); reply keys nobody asked for are kept as extra pairs.
    """
    free = list(keys)
    pairs: list[tuple[str, str | None]] = []
    for phone in requested:
        hit = next((k for k in free if k == phone or _digits(k) == phone), None)
        if hit is None:
            hit = next((k for k in free if _digits(k)[-10:] == phone[-10:]), None)
        if hit is not None:
            free.remove(hit)
        pairs.append((phone, hit))
    pairs.extend((_digits(k) or k, k) for k in free)
    return pairs


def parse_send(body: Any, requested: Sequence[str], *, test: bool, method: str = "sms/send") -> SendResult:
    reply = check_envelope(body, method)
    entries = as_mapping(reply.get("sms"))
    recipients: list[SendRecipient] = []
    for phone, key in match_keys(requested, list(entries)):
        if key is None:
            recipients.append(SendRecipient(phone=phone, key=None, ok=False, code=None, method=method))
            continue
        entry = as_mapping(entries[key])
        recipients.append(
            SendRecipient(
                phone=phone,
                key=key,
                ok=bool(status_is_ok(entry)),
                code=as_int(entry.get("status_code")),
                text=as_text(entry.get("status_text")),
                sms_id=as_text(entry.get("sms_id")) or None,
                method=method,
                cost=as_decimal(entry.get("cost")),
            )
        )
    return SendResult(recipients=recipients, balance=as_decimal(reply.get("balance")), test=test, raw=reply)


def parse_cost(body: Any, requested: Sequence[str]) -> CostResult:
    reply = check_envelope(body, "sms/cost")
    entries = as_mapping(reply.get("sms"))
    recipients: list[CostRecipient] = []
    for phone, key in match_keys(requested, list(entries)):
        entry = as_mapping(entries[key]) if key is not None else {}
        recipients.append(
            CostRecipient(
                phone=phone,
                key=key,
                ok=key is not None and bool(status_is_ok(entry)),
                code=as_int(entry.get("status_code")),
                text=as_text(entry.get("status_text")),
                cost=as_decimal(entry.get("cost")),
                parts=as_int(entry.get("sms")),
            )
        )
    return CostResult(
        recipients=recipients,
        total_cost=as_decimal(reply.get("total_cost")),
        total_sms=as_int(reply.get("total_sms")),
        raw=reply,
    )


def parse_status(body: Any) -> StatusResult:
    reply = check_envelope(body, "sms/status")
    messages: dict[str, MessageStatus] = {}
    for sms_id, raw_entry in as_mapping(reply.get("sms")).items():
        entry = as_mapping(raw_entry)
        code = as_int(entry.get("status_code"))
        messages[sms_id] = MessageStatus(
            sms_id=sms_id,
            code=code,
            text=as_text(entry.get("status_text")),
            cost=as_decimal(entry.get("cost")),
            send_time=as_int(entry.get("send_time")),
            status_time=as_int(entry.get("status_time")),
        )
    return StatusResult(messages=messages, balance=as_decimal(reply.get("balance")), raw=reply)


def parse_balance(body: Any) -> Decimal:
    reply = check_envelope(body, "my/balance")
    balance = as_decimal(reply.get("balance"))
    if balance is None:
        raise SmsRuBadResponse("sms.ru my/balance: reply has no readable balance", method="my/balance")
    return balance


def parse_limit(body: Any) -> DailyLimit:
    reply = check_envelope(body, "my/limit")
    return DailyLimit(
        total_limit=as_int(reply.get("total_limit")), used_today=as_int(reply.get("used_today")) or 0
    )


def parse_free(body: Any) -> FreeAllowance:
    reply = check_envelope(body, "my/free")
    return FreeAllowance(
        total_free=as_int(reply.get("total_free")), used_today=as_int(reply.get("used_today")) or 0
    )


def parse_senders(body: Any) -> list[str]:
    # No approved senders: the real reply has no "senders" key at all (§5).
    return as_str_list(check_envelope(body, "my/senders").get("senders"))


def parse_stoplist(body: Any) -> dict[str, str]:
    raw = check_envelope(body, "stoplist/get").get("stoplist")
    if isinstance(raw, list):
        # An empty PHP array arrives as []; a list of bare numbers is read as notes-less entries.
        return {s: "" for s in as_str_list(raw)}
    return {phone: as_text(note) or "" for phone, note in as_mapping(raw).items()}


def parse_callbacks(body: Any, method: str) -> list[str] | None:
    reply = check_envelope(body, method)
    if "callback" not in reply:
        return None
    return as_str_list(reply.get("callback"))
