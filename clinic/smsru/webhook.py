"""sms.ru's delivery callbacks (smsru.md §10): signature, parsing, the required reply.

sms.ru POSTs form fields ``data[0]`` … ``data[N]`` (up to 100 records) and ``hash``, where
``hash = sha256_hex(api_id + data[0] + data[1] + … + data[N])``. Each record is lines joined
by ``\\n``: ``sms_status``/id/code/unix time, ``callcheck_status``/id/code/unix time, or a
``test``/unix time heartbeat. The handler must answer exactly ``100`` to every request,
or sms.ru keeps resending; duplicates are therefore normal and :func:`dedupe_key` exists.

The hooks listener uses this module to accept callbacks; the emulator uses :func:`sign`
to produce them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clinic.smsru.lenient import as_int

REPLY = "100"  # the body sms.ru requires from a handler on every request

_DATA_KEY = re.compile(r"^data\[(\d+)\]$")


@dataclass(frozen=True)
class SmsStatusEvent:
    sms_id: str
    code: int  # a delivery code (§9.1)
    at: int | None  # unix time


@dataclass(frozen=True)
class CallcheckStatusEvent:
    check_id: str
    code: int  # 401 confirmed, 402 expired
    at: int | None


@dataclass(frozen=True)
class HeartbeatEvent:
    at: int | None


CallbackEvent = SmsStatusEvent | CallcheckStatusEvent | HeartbeatEvent


def sign(api_id: str, records: Sequence[str]) -> str:
    return hashlib.sha256((api_id + "".join(records)).encode("utf-8")).hexdigest()


def records_from_form(form: Mapping[str, str]) -> list[str]:
    """The ``data[N]`` values in numeric key order (``data[10]`` after ``data[9]``)."""
    numbered = []
    for key, value in form.items():
        match = _DATA_KEY.match(key)
        if match:
            numbered.append((int(match.group(1)), value))
    return [value for _, value in sorted(numbered)]


def verify(api_id: str, form: Mapping[str, str]) -> bool:
    """True if the form's ``hash`` matches its ``data[N]`` records under `api_id`."""
    given = (form.get("hash") or "").strip().lower()
    records = records_from_form(form)
    if not given or not records:
        return False
    return hmac.compare_digest(given, sign(api_id, records))


def parse_record(record: str) -> CallbackEvent | None:
    """One record as an event; None for unknown or malformed ones, which sms.ru says to ignore."""
    lines = [line.strip() for line in record.replace("\r\n", "\n").split("\n")]
    kind = lines[0] if lines else ""
    if kind == "test":
        return HeartbeatEvent(at=as_int(lines[1]) if len(lines) > 1 else None)
    if kind in ("sms_status", "callcheck_status") and len(lines) >= 3:
        code = as_int(lines[2])
        if not lines[1] or code is None:
            return None
        at = as_int(lines[3]) if len(lines) > 3 else None
        if kind == "sms_status":
            return SmsStatusEvent(sms_id=lines[1], code=code, at=at)
        return CallcheckStatusEvent(check_id=lines[1], code=code, at=at)
    return None


def parse_form(form: Mapping[str, str]) -> list[CallbackEvent]:
    """Every understood event of one callback POST, in order. Check :func:`verify` first."""
    return [event for event in map(parse_record, records_from_form(form)) if event is not None]


def dedupe_key(event: CallbackEvent) -> tuple[object, ...]:
    """(type, id, code, time): sms.ru resends until it sees ``100``, so the same event recurs."""
    if isinstance(event, SmsStatusEvent):
        return ("sms_status", event.sms_id, event.code, event.at)
    if isinstance(event, CallcheckStatusEvent):
        return ("callcheck_status", event.check_id, event.code, event.at)
    return ("test", event.at)
