"""The message ledger: queue a message (the row first), then dispatch queued rows in batches.

Life of a row: queued → sending (committed before the request) → sent | failed | unknown,
or skipped by a rule. Only rows that certainly did not go out go back to queued (connect
errors, sms.ru 220/500) with a backoff; a lost reply makes the row `unknown` for the
operator. `recover_stale` turns rows left in `sending` by a dead process into `unknown`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import (
    Appointment,
    ClinicSettings,
    Patient,
    SmsMessage,
    SmsPhoneFlag,
    SmsStopEntry,
)
from clinic.models.schedule import STATUS_CANCELLED
from clinic.models.sms import (
    MSG_FAILED,
    MSG_QUEUED,
    MSG_SENDING,
    MSG_SENT,
    MSG_SKIPPED,
    MSG_UNKNOWN,
)
from clinic.sms import rules
from clinic.smsru import SmsRuClient, SmsRuError, SmsRuRecipientError, SmsRuRetryableError, mask_text
from clinic.smsru.parts import count_parts

log = logging.getLogger("clinic.sms")

BATCH = 100
MAX_ATTEMPTS = 5
BACKOFF_S = 30.0
MAX_BACKOFF_S = 900.0
UNKNOWN_NOTE = (
    "Ответ sms.ru не получен: СМС могло уйти. Проверьте в личном кабинете sms.ru; "
    "автоматически не переотправляется"
)
STALE_NOTE = "Процесс отправки прервался во время запроса: СМС могло уйти. Автоматически не переотправляется"
UNDELIVERABLE_CODES = frozenset({106, 108, 150})

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Draft:
    """What to send. `key` makes queueing idempotent: the same key never makes a second SMS."""

    phone: str  # digits, from rules.sms_phone
    text: str
    key: str
    source: str = "single"
    user_id: int | None = None
    patient_id: int | None = None
    appointment_id: int | None = None
    mailing_id: int | None = None
    expires_at: datetime | None = None  # aware UTC; reminders: the visit


def queue(
    session: Session, settings: ClinicSettings, draft: Draft, *, now: datetime
) -> tuple[SmsMessage, bool]:
    """Write the ledger row (flushed, not committed). Returns (row, created). An existing row
    with the same key is returned untouched: nothing is queued twice."""
    existing = session.scalar(select(SmsMessage).where(SmsMessage.idempotency_key == draft.key))
    if existing is not None:
        return existing, False
    row = SmsMessage(
        idempotency_key=draft.key,
        source=draft.source,
        user_id=draft.user_id,
        patient_id=draft.patient_id,
        appointment_id=draft.appointment_id,
        mailing_id=draft.mailing_id,
        phone=draft.phone,
        text=draft.text,
        parts=max(1, count_parts(draft.text).parts),
        state=MSG_QUEUED,
        created_at=now,
        expires_at=draft.expires_at,
        attempts=0,
        note="",
        gateway_answer="",
        delivery_text="",
        delivery_final=False,
    )
    patient = session.get(Patient, draft.patient_id) if draft.patient_id else None
    reason = rules.stop_reason(session, draft.phone, patient)
    if reason is None and draft.expires_at is not None and rules.ttl_minutes(draft.expires_at, now) == 0:
        reason = "Приём уже начался: напоминание не отправлено"
    if reason:
        row.state, row.note = MSG_SKIPPED, reason
    elif (until := rules.quiet_until(settings, now)) is not None:
        row.not_before = until
        local = until.astimezone(rules.zone(settings))
        row.note = f"Тихие часы: отправка отложена до {local:%d.%m.%Y %H:%M}"
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same key queued by someone else a moment ago
        existing = session.scalar(select(SmsMessage).where(SmsMessage.idempotency_key == draft.key))
        if existing is None:
            raise
        return existing, False
    return row, True


def queue_many(
    session: Session, settings: ClinicSettings, drafts: list[Draft], *, now: datetime
) -> dict[str, int]:
    """`queue` for a whole mailing, in a few statements: returns key -> message id. Keys
    already in the ledger keep their row (the same reminder is never queued twice)."""
    ids: dict[str, int] = {}
    keys = list(dict.fromkeys(d.key for d in drafts))
    for chunk in _chunks(keys):
        ids.update(
            session.execute(
                select(SmsMessage.idempotency_key, SmsMessage.id).where(SmsMessage.idempotency_key.in_(chunk))
            ).all()
        )
    fresh = [d for d in {d.key: d for d in drafts if d.key not in ids}.values()]
    stopped: set[str] = set()
    for chunk in _chunks(sorted({d.phone for d in fresh})):
        stopped.update(session.scalars(select(SmsStopEntry.phone).where(SmsStopEntry.phone.in_(chunk))))
    refused: set[int] = set()
    for chunk in _chunks(sorted({d.patient_id for d in fresh if d.patient_id})):
        refused.update(
            session.scalars(select(Patient.id).where(Patient.id.in_(chunk), Patient.consent_sms.is_(False)))
        )
    until = rules.quiet_until(settings, now)
    quiet_note = ""
    if until is not None:
        quiet_note = (
            f"Тихие часы: отправка отложена до {until.astimezone(rules.zone(settings)):%d.%m.%Y %H:%M}"
        )
    rows = []
    for d in fresh:
        state, note, not_before = MSG_QUEUED, quiet_note, until
        if d.phone in stopped:
            state, note, not_before = MSG_SKIPPED, "Номер в стоп-листе клиники", None
        elif d.patient_id in refused:
            state, note, not_before = MSG_SKIPPED, "Пациент не дал согласия на СМС", None
        elif d.expires_at is not None and rules.ttl_minutes(d.expires_at, now) == 0:
            state, note, not_before = MSG_SKIPPED, "Приём уже начался: напоминание не отправлено", None
        rows.append(
            {
                "idempotency_key": d.key,
                "source": d.source,
                "user_id": d.user_id,
                "patient_id": d.patient_id,
                "appointment_id": d.appointment_id,
                "mailing_id": d.mailing_id,
                "phone": d.phone,
                "text": d.text,
                "parts": max(1, count_parts(d.text).parts),
                "state": state,
                "note": note,
                "created_at": now,
                "not_before": not_before,
                "expires_at": d.expires_at,
                "attempts": 0,
                "gateway_answer": "",
                "delivery_text": "",
                "delivery_final": False,
            }
        )
    if rows:
        try:
            with session.begin_nested():
                session.execute(insert(SmsMessage), rows)
        except IntegrityError:  # someone queued one of these keys meanwhile: go one by one
            for d in fresh:
                row, _created = queue(session, settings, d, now=now)
                ids[d.key] = row.id
            return ids
        for chunk in _chunks([r["idempotency_key"] for r in rows]):
            ids.update(
                session.execute(
                    select(SmsMessage.idempotency_key, SmsMessage.id).where(
                        SmsMessage.idempotency_key.in_(chunk)
                    )
                ).all()
            )
    return ids


def _chunks(items: list, size: int = 500) -> Iterator[list]:  # type: ignore[type-arg]
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- dispatch ---------------------------------------------------------------------------


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        SmsMessage.state == MSG_QUEUED,
        or_(SmsMessage.not_before.is_(None), SmsMessage.not_before <= now),
    )


@dataclass
class Claimed:
    """A claimed row, as the request needs it."""

    id: int
    phone: str
    text: str
    expires_at: datetime | None
    attempts: int


_CLAIMED_COLUMNS = (
    SmsMessage.id,
    SmsMessage.phone,
    SmsMessage.text,
    SmsMessage.expires_at,
    SmsMessage.attempts,
)


@dataclass
class BatchResult:
    """What one request did to its rows: counts, the row updates and the numbers to flag."""

    outcome: dict[str, int]
    updates: list[dict[str, object]]
    flags: list[tuple[str, int | None, str]]


def claim(
    factory: sessionmaker[Session], *, now: datetime, ids: Iterable[int] | None = None, limit: int = BATCH
) -> list[int]:
    """Move up to `limit` due rows (distinct phones) to `sending` and commit: the ledger says
    "in flight" before any request is made. Returns the claimed ids."""
    return [row.id for row in _claim_and_record(factory, None, now=now, ids=ids, limit=limit)]


def _claim_and_record(
    factory: sessionmaker[Session],
    previous: BatchResult | None,
    *,
    now: datetime,
    ids: Iterable[int] | None,
    limit: int,
) -> list[Claimed]:
    """One transaction: write the outcome of the previous batch (if any), claim the next."""
    wanted = list(ids) if ids is not None else None
    for attempt in range(5):
        try:
            with factory() as session, session.begin():
                if previous is not None:
                    # written first, so the transaction holds the write lock before it reads
                    _record(session, previous)
                return _claim_in(session, now=now, ids=wanted, limit=limit)
        except OperationalError:  # SQLite: another process wrote since our read; try again
            if attempt == 4:
                raise
            time.sleep(0.05 * 2**attempt)
    return []


CANCELLED_NOTE = "Запись отменена: напоминание не отправлено"


def _skip_cancelled_reminders(session: Session, now: datetime) -> None:
    """A reminder waiting its turn (quiet hours, a mailing's queue) whose visit was cancelled
    meanwhile, in the schedule or by the patient («Запись отменена»), never leaves. Read
    first: an idle poll takes no write lock."""
    cancelled = (
        select(Appointment.id)
        .where(
            Appointment.id == SmsMessage.appointment_id,
            or_(Appointment.status == STATUS_CANCELLED, Appointment.confirmation_status == "cancelled"),
        )
        .exists()
    )
    doomed = list(
        session.scalars(
            select(SmsMessage.id).where(_due(now), SmsMessage.idempotency_key.like("reminder:%"), cancelled)
        )
    )
    if doomed:
        session.execute(
            update(SmsMessage)
            .where(SmsMessage.id.in_(doomed), SmsMessage.state == MSG_QUEUED)
            .values(state=MSG_SKIPPED, note=CANCELLED_NOTE)
            .execution_options(synchronize_session=False)
        )


def _claim_in(session: Session, *, now: datetime, ids: list[int] | None, limit: int) -> list[Claimed]:
    _skip_cancelled_reminders(session, now)
    query = select(SmsMessage.id, SmsMessage.phone).where(_due(now)).order_by(SmsMessage.id)
    if ids is not None:
        query = query.where(SmsMessage.id.in_(ids))
    picked: list[int] = []
    phones: set[str] = set()
    for msg_id, phone in session.execute(query.limit(limit * 3)):
        if phone in phones:
            continue  # one text per number per request: the next batch takes it
        phones.add(phone)
        picked.append(msg_id)
        if len(picked) >= limit:
            break
    if not picked:
        return []
    session.execute(
        update(SmsMessage)
        .where(SmsMessage.id.in_(picked), SmsMessage.state == MSG_QUEUED)
        .values(state=MSG_SENDING, claimed_at=now, attempts=SmsMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(SmsMessage.id, SmsMessage.phone, SmsMessage.text, SmsMessage.expires_at, SmsMessage.attempts)
        .where(SmsMessage.id.in_(picked), SmsMessage.state == MSG_SENDING, SmsMessage.claimed_at == now)
        .order_by(SmsMessage.id)
    ).all()
    return [Claimed(r.id, r.phone, r.text, r.expires_at, r.attempts) for r in rows]


def _answer(entry: dict[str, object], api_id: str) -> str:
    return mask_text(json.dumps(entry, ensure_ascii=False), api_id)


def send_claimed(
    factory: sessionmaker[Session],
    client: SmsRuClient,
    ids: list[int],
    *,
    api_id: str,
    clock: Clock = utcnow,
) -> dict[str, int]:
    """One sms/send for the claimed rows (per-number texts), then record each row's outcome."""
    with factory() as session:
        rows = [
            Claimed(r.id, r.phone, r.text, r.expires_at, r.attempts)
            for r in session.execute(
                select(
                    SmsMessage.id,
                    SmsMessage.phone,
                    SmsMessage.text,
                    SmsMessage.expires_at,
                    SmsMessage.attempts,
                ).where(SmsMessage.id.in_(ids), SmsMessage.state == MSG_SENDING)
            )
        ]
    result = _send(client, rows, api_id=api_id, now=clock())
    with factory() as session, session.begin():
        _record(session, result)
    return result.outcome


def _send(client: SmsRuClient, rows: list[Claimed], *, api_id: str, now: datetime) -> BatchResult:
    """The request for claimed rows and what it means for each of them; no database work."""
    expired = [r.id for r in rows if r.expires_at is not None and rules.ttl_minutes(r.expires_at, now) == 0]
    live = [r for r in rows if r.id not in set(expired)]
    ttls = [t for r in live if (t := rules.ttl_minutes(r.expires_at, now)) is not None]
    outcome = {"sent": 0, "failed": 0, "unknown": 0, "retry": 0, "skipped": len(expired)}
    updates: list[dict[str, object]] = []
    flags: list[tuple[str, int | None, str]] = []
    for msg_id in expired:
        updates.append(
            {"id": msg_id, "state": MSG_SKIPPED, "note": "Приём уже начался: напоминание не отправлено"}
        )
    if not live:
        return BatchResult(outcome, updates, flags)
    try:
        result = client.send_each({r.phone: r.text for r in live}, ttl=min(ttls) if ttls else None)
    except SmsRuError as exc:
        text = f"{exc.code or ''} {exc.text or exc}".strip()
        answer = _answer(
            {"error": exc.__class__.__name__, "status_code": exc.code, "status_text": exc.text}, api_id
        )
        for r in live:
            if exc.outcome_unknown:
                outcome["unknown"] += 1
                updates.append(
                    {"id": r.id, "state": MSG_UNKNOWN, "note": UNKNOWN_NOTE, "gateway_answer": answer}
                )
            elif isinstance(exc, SmsRuRetryableError) and r.attempts < MAX_ATTEMPTS:
                outcome["retry"] += 1
                wait = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (r.attempts - 1))
                updates.append(
                    {
                        "id": r.id,
                        "state": MSG_QUEUED,
                        "not_before": now + timedelta(seconds=wait),
                        "note": f"Повторная попытка: {mask_text(text, api_id)[:200]}",
                        "gateway_answer": answer,
                    }
                )
            else:
                outcome["failed"] += 1
                updates.append(
                    {
                        "id": r.id,
                        "state": MSG_FAILED,
                        "gateway_code": exc.code,
                        "note": mask_text(text, api_id)[:300],
                        "gateway_answer": answer,
                    }
                )
        return BatchResult(outcome, updates, flags)
    # SendRecipient.phone is the number as we passed it: a dict keeps this O(n)
    # (result.for_phone scans the list, which is quadratic over a batch of 100).
    by_phone = {rec.phone: rec for rec in result.recipients}
    for r in live:
        rec = by_phone.get(r.phone) or result.for_phone(r.phone)
        if rec is None or rec.missing:
            outcome["unknown"] += 1
            updates.append({"id": r.id, "state": MSG_UNKNOWN, "note": UNKNOWN_NOTE, "gateway_answer": ""})
            continue
        entry = {"status": "OK" if rec.ok else "ERROR", "status_code": rec.code, "sms_id": rec.sms_id}
        if rec.text:
            entry["status_text"] = rec.text
        answer = _answer(entry, api_id)
        if rec.accepted:
            outcome["sent"] += 1
            updates.append(
                {
                    "id": r.id,
                    "state": MSG_SENT,
                    "sms_id": rec.sms_id,
                    "gateway_code": rec.code,
                    "gateway_answer": answer,
                    "sent_at": now,
                    "note": "Тестовый режим: СМС не отправлено" if result.test else "",
                }
            )
        else:
            outcome["failed"] += 1
            updates.append(
                {
                    "id": r.id,
                    "state": MSG_FAILED,
                    "gateway_code": rec.code,
                    "gateway_answer": answer,
                    "note": (rec.text or f"Код {rec.code}")[:300],
                }
            )
            if isinstance(rec.error, SmsRuRecipientError):
                flags.append((r.phone, rec.code, rec.text or ""))
    return BatchResult(outcome, updates, flags)


def _record(session: Session, result: BatchResult) -> None:
    if result.updates:
        # one executemany per set of columns
        by_keys: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for u in result.updates:
            by_keys.setdefault(tuple(sorted(u)), []).append(u)
        for group in by_keys.values():
            session.execute(update(SmsMessage), group)
    for phone, code, reason in result.flags:
        flag_phone(session, phone, code, reason)


def flag_phone(session: Session, phone: str, code: int | None, reason: str) -> None:
    """Remember that this number cannot get SMS (shown on the patient card and the dialog)."""
    row = session.scalar(select(SmsPhoneFlag).where(SmsPhoneFlag.phone == phone))
    patient_id = session.scalar(select(Patient.id).where(Patient.phone == "+" + phone).limit(1))
    if row is None:
        session.add(SmsPhoneFlag(phone=phone, patient_id=patient_id, code=code, reason=reason[:200]))
    else:
        row.code, row.reason, row.patient_id = code, reason[:200], row.patient_id or patient_id


def unflag_phone(session: Session, phone: str, delivered_at: datetime) -> None:
    """A message to this number was delivered: it gets SMS again (the patient fixed his
    phone, or the operator's fault is over). A flag recorded after that delivery stays: a
    newer failure wins (the flag keeps no time of its own but when we recorded it)."""
    session.execute(
        delete(SmsPhoneFlag).where(SmsPhoneFlag.phone == phone, SmsPhoneFlag.updated_at <= delivered_at)
    )


def dispatch_due(
    factory: sessionmaker[Session],
    client: SmsRuClient,
    *,
    api_id: str,
    concurrency: int = 8,
    clock: Clock = utcnow,
    ids: Iterable[int] | None = None,
    stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Send every due queued row in batches of up to 100, `concurrency` requests in flight.
    `on_batch` (the live progress) is called by a sender thread once a request's outcome is
    committed, outside the locks; it must not raise and should be quick.

    Each sender thread claims a batch (committed), sends it, then in one transaction writes
    that batch's outcome and claims its next: one commit per request instead of two, which
    is what SQLite's single writer can keep up with while 8 requests are in flight."""
    total = {"sent": 0, "failed": 0, "unknown": 0, "retry": 0, "skipped": 0, "requests": 0}
    wanted = list(ids) if ids is not None else None
    claim_lock = threading.Lock()
    total_lock = threading.Lock()

    def sender() -> None:
        done: BatchResult | None = None
        try:
            while True:
                with claim_lock:
                    rows = _claim_and_record(
                        factory, done, now=clock(), ids=wanted, limit=0 if stop() else BATCH
                    )
                recorded, done = done is not None, None
                if recorded and on_batch is not None:
                    on_batch()  # a batch's outcome is committed with the next claim: now
                if not rows:
                    return
                done = _send(client, rows, api_id=api_id, now=clock())
                with total_lock:
                    total["requests"] += 1
                    for k, v in done.outcome.items():
                        total[k] += v
        finally:
            if done is not None:  # an exception on the way out: keep what the request did
                with factory() as session, session.begin():
                    _record(session, done)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in [pool.submit(sender) for _ in range(max(1, concurrency))]:
            future.result()
    return total


def recover_stale(factory: sessionmaker[Session], *, lease_s: float, now: datetime) -> int:
    """Rows stuck in `sending` past the lease: their process died mid-request → unknown."""
    with factory() as session, session.begin():
        result = session.execute(
            update(SmsMessage)
            .where(SmsMessage.state == MSG_SENDING, SmsMessage.claimed_at < now - timedelta(seconds=lease_s))
            .values(state=MSG_UNKNOWN, note=STALE_NOTE)
            .execution_options(synchronize_session=False)
        )
    count = result.rowcount or 0
    if count:
        log.warning("СМС: %d сообщений с неизвестным результатом (процесс прервался во время запроса)", count)
    return count
