"""Delivery statuses and costs: sms.ru callbacks (hooks listener) and polling sms/status (worker).

A delivery status only moves forward: 100 → 101 → 102 → a final code (103 delivered,
110 read, 104…108/150 not delivered). A final status is never replaced by a pending one,
a record behind the status already applied is ignored, and between two final codes the
later record wins (103 → 110 «прочитано»). sms.ru resends batches and interleaves them,
so the same or an older record arriving again changes nothing.

The cost of a message is in sms/status only (smsru.md §3; sms/send gives none, §2.2), so
the poll also asks about messages whose delivery is final but whose cost is unknown.

A callback POST is read and its signature checked before the database write lock is
taken (:func:`read_callback`); then each record is applied or refused on its own
(:func:`apply_callback`), so one malformed record never costs the good ones.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import as_aware
from clinic.models import SmsMessage
from clinic.models.sms import MSG_SENT
from clinic.sms import ledger
from clinic.smsru import SmsRuClient, SmsRuError, batches
from clinic.smsru.codes import DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_TEXTS
from clinic.smsru.webhook import (
    CallbackEvent,
    CallcheckStatusEvent,
    HeartbeatEvent,
    MalformedRecord,
    Refusal,
    SmsStatusEvent,
    check_signature,
    numbered_records,
    read_record,
)

log = logging.getLogger("clinic.sms")

POLL_AFTER = timedelta(minutes=2)  # callbacks usually come first
POLL_WINDOW = timedelta(days=3)

APPLIED, REPEATED, BEHIND = "applied", "repeated", "behind"

# sms.ru sends unix seconds; a time outside these years is refused, not guessed at
# (a millisecond timestamp is year 57000, and datetime cannot even hold it).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2100, 1, 1, tzinfo=UTC).timestamp()

_PENDING_RANK = {100: 0, 101: 1, 102: 2}
_FINAL_RANK = 3


def _rank(code: int | None) -> int:
    """How far along delivery a code is; a pending code sms.ru may add later ranks first."""
    if code is None:
        return -1
    if code in DELIVERY_DELIVERED or code in DELIVERY_FAILED:
        return _FINAL_RANK
    return _PENDING_RANK.get(code, 0)


def delivery_step(row: SmsMessage, code: int, at: datetime) -> str:
    """APPLIED if (code, at) moves the row's delivery forward, else REPEATED or BEHIND."""
    if row.delivery_code == code:
        return REPEATED
    new, current = _rank(code), _rank(row.delivery_code)
    if new != current:
        return APPLIED if new > current else BEHIND
    if row.delivery_at is None or as_aware(at) > as_aware(row.delivery_at):
        return APPLIED
    return BEHIND


def apply_status(session: Session, row: SmsMessage, code: int, at: datetime) -> str:
    """Record a delivery code if it moves the row forward; returns the step taken."""
    step = delivery_step(row, code, at)
    if step != APPLIED:
        return step
    row.delivery_code, row.delivery_text = code, DELIVERY_TEXTS.get(code, f"Код {code}")
    row.delivery_at = at
    row.delivery_final = _rank(code) == _FINAL_RANK
    if code in ledger.UNDELIVERABLE_CODES:
        ledger.flag_phone(session, row.phone, code, row.delivery_text)
    elif code in DELIVERY_DELIVERED:
        ledger.unflag_phone(session, row.phone, as_aware(at))
    return APPLIED


def record_cost(row: SmsMessage, cost: Decimal | None) -> bool:
    """Store the price sms.ru charged (final status or not); True if it changed."""
    if cost is None or row.cost == cost:
        return False
    row.cost = cost
    return True


# ---------------------------------------------------------------- callbacks


@dataclass(frozen=True)
class RecordOutcome:
    """What became of one ``data[N]`` record, for the exchange log."""

    number: int
    result: str  # applied | repeated | behind | unknown | skipped | refused
    detail: str  # Russian

    def line(self) -> str:
        return f"{_RESULT_WORDS[self.result]}: {self.detail}"


_RESULT_WORDS = {
    APPLIED: "применена",
    REPEATED: "повтор",
    BEHIND: "устарела",
    "unknown": "не найдена",
    "skipped": "пропущена",
    "refused": "отклонена",
}

Numbered = list[tuple[int, CallbackEvent | MalformedRecord]]


def read_callback(api_id: str, form: Mapping[str, str]) -> Refusal | Numbered:
    """The refusal of the whole POST, or its records read one by one. No database work."""
    refusal = check_signature(api_id, form)
    if refusal is not None:
        return refusal
    return [(number, read_record(record)) for number, record in numbered_records(form)]


def apply_callback(session: Session, records: Numbered, *, now: datetime) -> list[RecordOutcome]:
    """Apply each record on its own; the caller commits. Rows are read in one query."""
    ids = {item.sms_id for _, item in records if isinstance(item, SmsStatusEvent)}
    rows: dict[str, list[SmsMessage]] = defaultdict(list)
    for sms_id_chunk in batches(sorted(ids)):
        for row in session.scalars(select(SmsMessage).where(SmsMessage.sms_id.in_(sms_id_chunk))):
            rows[row.sms_id or ""].append(row)
    return [RecordOutcome(number, *_apply_record(session, item, rows, now)) for number, item in records]


def _apply_record(
    session: Session,
    item: CallbackEvent | MalformedRecord,
    rows: Mapping[str, Sequence[SmsMessage]],
    now: datetime,
) -> tuple[str, str]:
    if isinstance(item, MalformedRecord):
        return "refused", item.reason
    if isinstance(item, HeartbeatEvent):
        return "skipped", "проверка обработчика (test)"
    if isinstance(item, CallcheckStatusEvent):
        return "skipped", f"{item.check_id}: авторизация по звонку не используется"
    if not 100 <= item.code < 200:
        return "refused", f"{item.sms_id}: {item.code} — не код доставки"
    if item.at is not None and not EARLIEST <= item.at < LATEST:
        return "refused", f"{item.sms_id}: время {item.at} — не секунды Unix (миллисекунды?)"
    matched = rows.get(item.sms_id, ())
    if not matched:
        return "unknown", f"{item.sms_id}: нет в истории СМС"
    at = _moment(item.at, now)
    steps = [apply_status(session, row, item.code, at) for row in matched]
    step = APPLIED if APPLIED in steps else REPEATED if REPEATED in steps else BEHIND
    current = matched[0].delivery_code
    return step, f"{item.sms_id}: {item.code}" + ("" if step == APPLIED else f", в истории {current}")


# ---------------------------------------------------------------- polling


def poll_statuses(factory: sessionmaker[Session], client: SmsRuClient, *, now: datetime) -> int:
    """Ask sms/status about sent messages whose delivery is not final or whose cost is
    unknown (the callback brings the final status, never the cost). Returns rows changed."""
    with factory() as session:
        pending = session.execute(
            select(SmsMessage.id, SmsMessage.sms_id).where(
                SmsMessage.state == MSG_SENT,
                or_(SmsMessage.delivery_final.is_(False), SmsMessage.cost.is_(None)),
                SmsMessage.sms_id.is_not(None),
                SmsMessage.sent_at < now - POLL_AFTER,
                SmsMessage.sent_at > now - POLL_WINDOW,
            )
        ).all()
    changed = 0
    by_sms = {sms_id: msg_id for msg_id, sms_id in pending}
    for chunk in batches(list(by_sms)):
        try:
            result = client.status(chunk)
        except SmsRuError as exc:
            log.warning("sms.ru status: %s", exc)
            return changed
        with factory() as session, session.begin():
            for sms_id, status in result.messages.items():
                if not status.found or status.code is None or sms_id not in by_sms:
                    continue
                row = session.get(SmsMessage, by_sms[sms_id])
                if row is not None:
                    at = _moment(status.status_time, now)
                    stepped = apply_status(session, row, status.code, at) == APPLIED
                    changed += stepped | record_cost(row, status.cost)
    return changed


def _moment(unix: int | None, fallback: datetime) -> datetime:
    """sms.ru's status_time (only some replies carry it) or, without a usable one, `fallback`."""
    if unix is None or not EARLIEST <= unix < LATEST:
        return fallback
    return datetime.fromtimestamp(unix, UTC)
