"""sms.ru's delivery callbacks (smsru.md §10): signature, parsing, the required reply.

sms.ru POSTs form fields ``data[0]`` … ``data[N]`` (up to 100 records) and ``hash``, where
``hash = sha256_hex(api_id + data[0] + data[1] + … + data[N])``. Each record is lines joined
by ``\\n``: ``sms_status``/id/code/unix time, ``callcheck_status``/id/code/unix time, or a
``test``/unix time heartbeat. The handler must answer exactly ``100`` to every request,
or sms.ru keeps resending; duplicates are therefore normal and :func:`dedupe_key` exists.

The hooks listener uses this module to accept callbacks (:func:`check_signature`, then
:func:`read_record` per record, so one malformed record never costs the others); the
emulator signs its callbacks with its own code (emulators/smsru/signing.py). Nothing here
raises on hostile input.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clinic.smsru.lenient import as_int

REPLY = "100"  # the body sms.ru requires from a handler on every request
HASH_LENGTH = 64  # sha256 as hex
MAX_ID = 64  # SmsMessage.sms_id is String(64)

_DATA_KEY = re.compile(r"^data\[(\d{1,6})\]$")  # anchored, no nested repetition: linear
_HEX = frozenset("0123456789abcdef")


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


@dataclass(frozen=True)
class MalformedRecord:
    reason: str  # Russian, for the exchange log


@dataclass(frozen=True)
class Refusal:
    """Why a whole callback POST is refused, and the HTTP status to answer with."""

    http_status: int
    reason: str


CallbackEvent = SmsStatusEvent | CallcheckStatusEvent | HeartbeatEvent


def sign(api_id: str, records: Sequence[str]) -> str:
    # surrogatepass: a record that is not valid Unicode still gets a (non-matching) hash
    return hashlib.sha256((api_id + "".join(records)).encode("utf-8", "surrogatepass")).hexdigest()


def numbered_records(form: Mapping[str, str]) -> list[tuple[int, str]]:
    """(N, value) of every ``data[N]`` in numeric key order (``data[10]`` after ``data[9]``)."""
    numbered = []
    for key, value in form.items():
        match = _DATA_KEY.match(key)
        if match:
            numbered.append((int(match.group(1)), value))
    return sorted(numbered)


def records_from_form(form: Mapping[str, str]) -> list[str]:
    """The ``data[N]`` values in numeric key order."""
    return [value for _, value in numbered_records(form)]


def given_hash(form: Mapping[str, str]) -> str | None:
    """The form's ``hash`` in lower case if it is 64 hex digits, else None.

    Checked before :func:`hmac.compare_digest`, which raises on a non-ASCII string.
    """
    given = (form.get("hash") or "").strip().lower()
    if len(given) != HASH_LENGTH or not _HEX.issuperset(given):
        return None
    return given


def verify(api_id: str, form: Mapping[str, str]) -> bool:
    """True if the form's ``hash`` matches its ``data[N]`` records under `api_id`."""
    return check_signature(api_id, form) is None


def check_signature(api_id: str, form: Mapping[str, str]) -> Refusal | None:
    """None for a POST signed with `api_id`, else why it is refused.

    400 for a request that is not a callback at all (no records, no or malformed hash);
    403 when the signature does not match the clinic's key, or there is no key to check
    it with: sms.ru then sends the batch again, and it is taken once the key is right.
    """
    records = records_from_form(form)
    if not records:
        return Refusal(400, "нет записей data[N]")
    if not (form.get("hash") or "").strip():
        return Refusal(400, "нет подписи hash")
    given = given_hash(form)
    if given is None:
        return Refusal(400, "подпись hash — не 64 шестнадцатеричных символа")
    if not api_id:
        return Refusal(403, "ключ API sms.ru не задан в настройках: подпись не проверить")
    if not hmac.compare_digest(given, sign(api_id, records)):
        return Refusal(403, "подпись не совпала с ключом API sms.ru из настроек")
    return None


def read_record(record: str) -> CallbackEvent | MalformedRecord:
    """One record as an event, or why it cannot be one (unknown type, missing or odd fields)."""
    lines = [line.strip() for line in record.replace("\r\n", "\n").split("\n")]
    kind = lines[0]
    if kind == "test":
        return HeartbeatEvent(at=_number(lines[1]) if len(lines) > 1 else None)
    if kind not in ("sms_status", "callcheck_status"):
        return MalformedRecord(f"неизвестный тип записи {kind[:40]!r}")
    if len(lines) < 3:
        return MalformedRecord("в записи нет кода статуса")
    ident, code = lines[1], _number(lines[2])
    # The id goes into a database lookup: a NUL or a lone surrogate must not reach it.
    if not ident or len(ident) > MAX_ID or not (ident.isascii() and ident.isprintable()):
        return MalformedRecord("идентификатор пустой или недопустимый")
    if code is None:
        return MalformedRecord("код статуса не число")
    at = _number(lines[3]) if len(lines) > 3 and lines[3] else None
    if len(lines) > 3 and lines[3] and at is None:
        return MalformedRecord("время записи не число")
    if kind == "sms_status":
        return SmsStatusEvent(sms_id=ident, code=code, at=at)
    return CallcheckStatusEvent(check_id=ident, code=code, at=at)


def _number(text: str) -> int | None:
    """A whole number in ASCII digits ('²'.isdigit() is true, yet int('²') raises), at most
    18 digits; whatever sms.ru's loose typing adds (\"103.0\") goes through as_int."""
    if len(text) > 18 or not text.isascii():
        return None
    return as_int(text)


def parse_record(record: str) -> CallbackEvent | None:
    """One record as an event; None for unknown or malformed ones, which sms.ru says to ignore."""
    event = read_record(record)
    return None if isinstance(event, MalformedRecord) else event


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
