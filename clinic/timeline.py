"""One patient's history in one list by time: appointments, changes of their status
(confirmed, cancelled: by whom), calls with their recordings, SMS with their delivery, the
Mango robot's tasks and answers, our own voice robot's calls and answers, and reminders
that were stopped or not sent.

Paged by a cursor (the last item's moment, kind and id), newest first: each source reads at
most a page from the cursor back through its own index, so a patient with years of history
costs the same as a new one. Every moment is aware UTC; appointments (the clinic's wall
clock) are converted with the clinic's zone. Used by the patient card; any process may call
it (it needs only a session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from clinic.clock import clinic_zone
from clinic.models import (
    STATUS_CANCELLED,
    Appointment,
    Call,
    ReminderJob,
    RobotTask,
    RobotTaskItem,
    SmsMessage,
)
from clinic.models.base import as_aware
from clinic.models.calls import CALL_STATES, DIRECTIONS, result_title
from clinic.models.reminders import JOB_SENT
from clinic.models.robot import ROBOT_DELETED, ROBOT_FAILED
from clinic.models.schedule import CONFIRMATION_STATUSES
from clinic.models.sms import MSG_FAILED, MSG_SENT, MSG_SKIPPED, MSG_UNKNOWN
from clinic.models.voice_robot import (
    ATTEMPT_DONE,
    OUT_CANCELLED,
    OUT_CONFIRMED,
    OUT_OPERATOR,
    UNREACHED_OUTCOMES,
    VoiceAttempt,
    VoiceItem,
    VoicePhone,
)
from clinic.phones import display

KIND_APPOINTMENT = "appointment"
KIND_STATUS = "status"
KIND_CALL = "call"
KIND_SMS = "sms"
KIND_ROBOT = "robot"
KIND_VOICE = "voice"
KIND_REMINDER = "reminder"
KINDS = {
    KIND_APPOINTMENT: "Приёмы",
    KIND_STATUS: "Подтверждения и отмены",
    KIND_CALL: "Звонки",
    KIND_SMS: "СМС",
    KIND_ROBOT: "Робот Mango",
    KIND_VOICE: "Голосовой робот",
    KIND_REMINDER: "Напоминания",
}
PAGE = 30
MAX_PAGE = 200

SOURCE_TITLES = {
    "registrar": "регистратор",
    "mango": "робот Mango",
    "mango_report": "робот Mango",
    "voice": "голосовой робот",
    "voice_robot": "голосовой робот",
    "voice_inbound": "пациент, позвонив в клинику",
    "inbound": "входящий звонок",
    "sms": "ответ на СМС",
    "api": "МИС",
}
ROBOT_ANSWERS = {1: "Запись подтверждена", 2: "Запись отменена"}


@dataclass(frozen=True)
class Item:
    kind: str
    at: datetime  # aware UTC
    ref: int  # the row's id within its kind: the cursor's tie-break
    title: str
    detail: str = ""
    state: str = ""  # a short state for the badge
    tone: str = ""  # ok / warn / bad / "": how the badge looks
    appointment_id: int | None = None
    recordings: tuple[int, ...] = ()  # call recordings that can be played

    @property
    def kind_title(self) -> str:
        return KINDS[self.kind]

    def key(self) -> tuple[datetime, str, int]:
        return (self.at, self.kind, self.ref)


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next_cursor: str | None  # pass back for the next (older) page; None: nothing older


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def encode_cursor(item: Item) -> str:
    micros = (item.at - EPOCH) // MICROSECOND  # exact: a float timestamp could lose one
    return f"{micros}.{item.kind}.{item.ref}"


def decode_cursor(raw: str | None) -> tuple[datetime, str, int] | None:
    """The cursor's key, or None for a missing or malformed one (the first page then)."""
    if not raw:
        return None
    parts = raw.split(".")
    if len(parts) != 3 or parts[1] not in KINDS:
        return None
    micros, kind, ref = parts
    if not (micros.isascii() and micros.isdigit() and ref.isascii() and ref.isdigit()) or len(micros) > 17:
        return None
    try:
        at = EPOCH + int(micros) * MICROSECOND
    except OverflowError:
        return None
    return at, kind, int(ref)


def _local_to_utc(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _visit(appt: Appointment) -> str:
    parts = [f"{appt.starts_at:%d.%m.%Y %H:%M}"]
    if appt.doctor is not None:
        parts.append(appt.doctor.short_name)
    if appt.service is not None:
        parts.append(appt.service.name)
    return ", ".join(parts)


# ---------------------------------------------------------------- the sources


def _appointments(
    session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo
) -> list[Item]:
    query = (
        select(Appointment)
        .options(
            joinedload(Appointment.doctor), joinedload(Appointment.service), joinedload(Appointment.cabinet)
        )
        .where(Appointment.patient_id == patient_id)
    )
    if upto is not None:
        query = query.where(Appointment.starts_at <= upto.astimezone(zone).replace(tzinfo=None))
    items = []
    for a in session.scalars(query.order_by(Appointment.starts_at.desc(), Appointment.id.desc()).limit(n)):
        detail = ", ".join(
            p for p in (a.cabinet.title if a.cabinet else "", (a.extra_info or "").replace("\n", "; ")) if p
        )
        tone = {"cancelled": "bad", "no_show": "bad", "done": "ok", "arrived": "ok"}.get(a.status, "")
        items.append(
            Item(
                KIND_APPOINTMENT,
                _local_to_utc(a.starts_at, zone),
                a.id,
                f"Приём: {_visit(a)}",
                detail,
                a.status_title,
                tone,
                a.id,
            )  # fmt: skip
        )
    return items


def _statuses(session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo) -> list[Item]:
    """Confirmations (by whom) at their moment; cancellations by staff at the last change."""
    items: list[Item] = []
    base = (
        select(Appointment)
        .options(joinedload(Appointment.doctor), joinedload(Appointment.service))
        .where(Appointment.patient_id == patient_id)
    )
    confirmed = base.where(Appointment.confirmed_at.is_not(None), Appointment.confirmation_status != "")
    if upto is not None:
        confirmed = confirmed.where(Appointment.confirmed_at <= _naive_utc_param(session, upto))
    for a in session.scalars(confirmed.order_by(Appointment.confirmed_at.desc()).limit(n)):
        who = SOURCE_TITLES.get(a.confirmation_source, a.confirmation_source)
        text = CONFIRMATION_STATUSES.get(a.confirmation_status, a.confirmation_status)
        tone = "ok" if a.confirmation_status == "confirmed" else "bad"
        items.append(
            Item(
                KIND_STATUS,
                as_aware(a.confirmed_at),
                a.id * 2,
                f"{text}: {_visit(a)}",  # type: ignore[arg-type]
                f"Источник: {who}" if who else "",
                text,
                tone,
                a.id,
            )  # fmt: skip
        )
    cancelled = base.where(
        Appointment.status == STATUS_CANCELLED, Appointment.confirmation_status != "cancelled"
    )
    if upto is not None:
        cancelled = cancelled.where(Appointment.updated_at <= _naive_utc_param(session, upto))
    for a in session.scalars(cancelled.order_by(Appointment.updated_at.desc()).limit(n)):
        items.append(
            Item(
                KIND_STATUS,
                as_aware(a.updated_at),
                a.id * 2 + 1,
                f"Запись отменена: {_visit(a)}",
                f"Причина: {a.cancel_reason}" if a.cancel_reason else "",
                "Отменён",
                "bad",
                a.id,
            )  # fmt: skip
        )
    return items


def _naive_utc_param(session: Session, moment: datetime) -> datetime:
    """SQLite stores aware columns as naive UTC text: compare with the same; PostgreSQL
    compares instants."""
    return _naive_utc(moment) if session.get_bind().dialect.name == "sqlite" else moment


def _calls(session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo) -> list[Item]:
    query = select(Call).options(selectinload(Call.recordings)).where(Call.patient_id == patient_id)
    if upto is not None:
        query = query.where(Call.started_at <= _naive_utc_param(session, upto))
    items = []
    for c in session.scalars(query.order_by(Call.started_at.desc(), Call.id.desc()).limit(n)):
        state = result_title(c.direction, c.result) if c.result else CALL_STATES.get(c.state, c.state)
        tone = {"answered": "ok", "missed": "bad", "failed": "bad", "busy": "warn"}.get(c.result, "")
        seconds = c.duration_s
        parts = [display(c.number) if c.number.startswith("+") else c.number]
        if seconds is not None:
            parts.append(f"{seconds // 60}:{seconds % 60:02d}")
        if c.reason:
            parts.append(c.reason)
        recordings = tuple(r.id for r in c.recordings if r.state == "done")
        items.append(
            Item(
                KIND_CALL,
                as_aware(c.started_at),
                c.id,
                f"{DIRECTIONS.get(c.direction, c.direction)} звонок",
                ", ".join(p for p in parts if p),
                state,
                tone,
                c.appointment_id,
                recordings,
            )  # fmt: skip
        )
    return items


def _sms(session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo) -> list[Item]:
    query = select(SmsMessage).where(SmsMessage.patient_id == patient_id)
    if upto is not None:
        query = query.where(SmsMessage.created_at <= _naive_utc_param(session, upto))
    items = []
    for m in session.scalars(query.order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()).limit(n)):
        if m.state == MSG_SENT:
            state = m.delivery_text or "Отправлено, ждёт доставки"
            tone = "ok" if m.delivery_code in (103, 110) else ("bad" if m.delivery_final else "")
        else:
            state = m.state_title
            tone = "bad" if m.state in (MSG_FAILED, MSG_SKIPPED, MSG_UNKNOWN) else ""
        detail = m.text if not m.note or m.state == MSG_SENT else f"{m.text} — {m.note}"
        items.append(
            Item(
                KIND_SMS,
                as_aware(m.created_at),
                m.id,
                f"СМС на {display('+' + m.phone)}",
                detail,
                state,
                tone,
                m.appointment_id,
            )  # fmt: skip
        )
    return items


def _robot(session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo) -> list[Item]:
    moment = func.coalesce(RobotTask.result_at, RobotTask.created_at)
    ids = (
        select(RobotTaskItem.robot_task_id)
        .join(Appointment, Appointment.id == RobotTaskItem.appointment_id)
        .where(Appointment.patient_id == patient_id)
    )
    query = select(RobotTask).options(selectinload(RobotTask.items)).where(RobotTask.id.in_(ids))
    if upto is not None:
        query = query.where(moment <= _naive_utc_param(session, upto))
    items = []
    for t in session.scalars(query.order_by(moment.desc(), RobotTask.id.desc()).limit(n)):
        if t.result_status in ROBOT_ANSWERS:
            title, state = "Ответ робота Mango", ROBOT_ANSWERS[t.result_status]
            tone = "ok" if t.result_status == 1 else "bad"
        else:
            title, state = "Робот Mango: задача на звонок", t.state_title
            tone = "bad" if t.state in (ROBOT_FAILED, ROBOT_DELETED) else ""
        visits = ", ".join(f"{i.starts_at:%d.%m.%Y %H:%M}" for i in t.items)
        detail = "; ".join(p for p in (f"Приём {visits}" if visits else "", t.error) if p)
        first = t.items[0].appointment_id if t.items else None
        at = as_aware(t.result_at or t.created_at)
        items.append(Item(KIND_ROBOT, at, t.id, title, detail, state, tone, first))
    return items


def _voice(session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo) -> list[Item]:
    """Our own robot's calls about the patient's visits: each attempt with what came of it."""
    moment = func.coalesce(VoiceAttempt.ended_at, VoiceAttempt.started_at)
    phones = (
        select(VoiceItem.phone_id)
        .join(Appointment, Appointment.id == VoiceItem.appointment_id)
        .where(Appointment.patient_id == patient_id)
    )
    query = select(VoiceAttempt).where(VoiceAttempt.phone_id.in_(phones))
    if upto is not None:
        query = query.where(moment <= _naive_utc_param(session, upto))
    attempts = session.scalars(query.order_by(moment.desc(), VoiceAttempt.id.desc()).limit(n)).all()
    rows = {
        r.id: r
        for r in session.scalars(
            select(VoicePhone)
            .options(selectinload(VoicePhone.items))
            .where(VoicePhone.id.in_({a.phone_id for a in attempts}))
        )
    }
    items = []
    for a in attempts:
        phone = rows[a.phone_id]
        if a.state != ATTEMPT_DONE:
            state, tone = "Звонок идёт", ""
        else:
            state = a.outcome_title
            tone = {OUT_CONFIRMED: "ok", OUT_CANCELLED: "bad", OUT_OPERATOR: ""}.get(
                a.outcome, "warn" if a.outcome in UNREACHED_OUTCOMES else ""
            )
        visits = ", ".join(f"{i.starts_at:%d.%m.%Y %H:%M}" for i in phone.items)
        parts = [display(phone.phone), f"звонок {a.round}", f"приём {visits}" if visits else "", a.note]
        first = phone.items[0].appointment_id if phone.items else None
        at = as_aware(a.ended_at or a.started_at)
        detail = ", ".join(p for p in parts if p)
        items.append(Item(KIND_VOICE, at, a.id, "Голосовой робот", detail, state, tone, first))
    return items


def _reminders(
    session: Session, patient_id: int, upto: datetime | None, n: int, zone: ZoneInfo
) -> list[Item]:
    """Reminders that did not go (stopped, skipped, waiting): the sent ones are the SMS and
    robot items themselves."""
    query = (
        select(ReminderJob)
        .options(joinedload(ReminderJob.rule))
        .where(ReminderJob.patient_id == patient_id, ReminderJob.state != JOB_SENT)
    )
    if upto is not None:
        query = query.where(ReminderJob.created_at <= _naive_utc_param(session, upto))
    items = []
    for j in session.scalars(query.order_by(ReminderJob.created_at.desc(), ReminderJob.id.desc()).limit(n)):
        tone = "warn" if j.state == "planned" else ""
        items.append(
            Item(
                KIND_REMINDER,
                as_aware(j.created_at),
                j.id,
                f"Напоминание «{j.rule.name}»",
                f"Приём {j.starts_at:%d.%m.%Y %H:%M}. {j.note}".strip(),
                j.state_title,
                tone,
                j.appointment_id,
            )  # fmt: skip
        )
    return items


Source = Callable[[Session, int, "datetime | None", int, ZoneInfo], list[Item]]
SOURCES: dict[str, Source] = {
    KIND_APPOINTMENT: _appointments,
    KIND_STATUS: _statuses,
    KIND_CALL: _calls,
    KIND_SMS: _sms,
    KIND_ROBOT: _robot,
    KIND_VOICE: _voice,
    KIND_REMINDER: _reminders,
}


def patient_timeline(
    session: Session,
    patient_id: int,
    *,
    kinds: Iterable[str] | None = None,
    cursor: str | None = None,
    limit: int = PAGE,
) -> Page:
    """A page of the patient's history, newest first, from `cursor` back."""
    limit = max(1, min(MAX_PAGE, limit))
    wanted = [k for k in (kinds or KINDS) if k in SOURCES] or list(KINDS)
    after = decode_cursor(cursor)
    zone = clinic_zone(session)
    upto = after[0] if after else None
    found: list[Item] = []
    for kind in wanted:
        # one more than a page, and room for items sharing the cursor's very moment
        found += SOURCES[kind](session, patient_id, upto, limit + 5, zone)
    if after is not None:
        found = [item for item in found if item.key() < after]
    found.sort(key=Item.key, reverse=True)
    page = found[:limit]
    more = len(found) > limit
    return Page(page, encode_cursor(page[-1]) if more and page else None)
