"""The dialer's state machine, free of Asterisk: which phones are due, claiming a call
(its attempt row committed before anything is dialled), what an attempt's outcome does
(answered → done; unreached → a retry after M minutes within calling hours, up to K times →
an SMS → «Не дозвонились» at its deadline) and recovery after a restart.

Every function takes `now` (aware UTC): the caller's clock, which tests compress. An
appointment is never cancelled because its patient was not reached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from clinic.clock import clinic_zone
from clinic.models import Appointment, JournalEntry, Patient
from clinic.models.base import as_aware
from clinic.models.schedule import STATUS_BOOKED
from clinic.models.sms import MSG_SKIPPED
from clinic.models.voice_robot import (
    ATTEMPT_DONE,
    ATTEMPT_LIVE,
    ATTEMPT_PLACING,
    ATTEMPT_RINGING,
    ATTEMPT_TALKING,
    CAMPAIGN_DONE,
    CAMPAIGN_RUNNING,
    OUT_CANCELLED,
    OUT_CONFIRMED,
    OUT_INTERRUPTED,
    OUT_OPERATOR,
    OUT_STALE,
    PHONE_ANSWERED,
    PHONE_CALLING,
    PHONE_OPEN,
    PHONE_OPERATOR,
    PHONE_SETTLED,
    PHONE_SMS,
    PHONE_UNREACHED,
    PHONE_WAITING,
    UNREACHED_OUTCOMES,
    VoiceAttempt,
    VoiceCampaign,
    VoiceItem,
    VoicePhone,
    VoiceRobotSettings,
)
from clinic.services.settings import read_settings
from clinic.sms import ledger, rules, sending
from clinic.voice_robot import prompts
from clinic.voice_robot import settings as robot_settings
from clinic.voice_robot.answers import JOURNAL_SERVICE, Answer, Asked

SMS_SOURCE = "voice_robot"


@dataclass(frozen=True)
class CallPlan:
    """One call to place: what the robot reads and how long it waits."""

    attempt_id: int
    phone_id: int
    campaign_id: int
    phone: str
    round: int
    text: str
    asked: tuple[Asked, ...]
    started_at: datetime
    ring_seconds: int
    dtmf_seconds: int

    @property
    def channel_id(self) -> str:
        return f"robot-{self.attempt_id}-{self.round}"


def local(session: Session, now: datetime) -> datetime:
    return as_aware(now).astimezone(clinic_zone(session)).replace(tzinfo=None)


def within_hours(cfg: VoiceRobotSettings, local_now: datetime) -> bool:
    minute = local_now.hour * 60 + local_now.minute
    return robot_settings.minutes_of(cfg.hours_from) <= minute < robot_settings.minutes_of(cfg.hours_to)


def live_attempts(session: Session) -> int:
    return (
        session.scalar(select(func.count(VoiceAttempt.id)).where(VoiceAttempt.state.in_(ATTEMPT_LIVE))) or 0
    )


def open_items(session: Session, phone: VoicePhone) -> list[tuple[VoiceItem, Appointment]]:
    """The phone's appointments still to ask about: booked and not answered by anyone."""
    rows = session.execute(
        select(VoiceItem, Appointment)
        .join(Appointment, Appointment.id == VoiceItem.appointment_id)
        .options(joinedload(Appointment.doctor), joinedload(Appointment.service))
        .where(VoiceItem.phone_id == phone.id)
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    return [
        (item, appt) for item, appt in rows if appt.status == STATUS_BOOKED and not appt.confirmation_status
    ]


def visit_of(appt: Appointment) -> prompts.Visit:
    doctor = appt.doctor
    return prompts.Visit(
        appt.starts_at,
        doctor.full_name if doctor else "",
        (doctor.specialty or "") if doctor else "",
        appt.service.name if appt.service else "",
    )


def claim(session: Session, now: datetime, *, busy_elsewhere: int = 0, robot_live: int = 0) -> list[CallPlan]:
    """Claim the calls to place now, within the channel limit; the caller commits before
    dialling. Outside calling hours nothing is claimed. `robot_live`: the robot's calls still
    on the line as its process sees them (a call whose answer is written still holds its
    line while the last words play)."""
    cfg = robot_settings.read(session)
    local_now = local(session, now)
    if not within_hours(cfg, local_now):
        return []
    live = max(live_attempts(session), robot_live)
    # the robot's own limit, and never the trunk's last free line (registrars keep one)
    free = min(cfg.robot_channels - live, cfg.trunk_channels - 1 - live - busy_elsewhere)
    if free <= 0:
        return []
    due = session.scalars(
        select(VoicePhone)
        .join(VoiceCampaign, VoiceCampaign.id == VoicePhone.campaign_id)
        .where(
            VoiceCampaign.state == CAMPAIGN_RUNNING,
            VoicePhone.state == PHONE_WAITING,
            VoicePhone.next_at <= now,
        )
        .order_by(VoicePhone.next_at, VoicePhone.id)
        .limit(free * 2 + 5)
    ).all()
    plans: list[CallPlan] = []
    for phone in due:
        if len(plans) >= free:
            break
        # a visit that has begun is not asked about (a same-day reminder's retry runs late)
        items = [(item, appt) for item, appt in open_items(session, phone) if appt.starts_at > local_now]
        if not items:  # answered elsewhere, cancelled, moved out by staff or begun: nothing to ask
            phone.state, phone.next_at, phone.updated_at = PHONE_SETTLED, None, now
            continue
        for item, appt in items:
            item.starts_at = appt.starts_at  # the time read now is the one an answer is about
        round_no = phone.calls + 1
        attempt = VoiceAttempt(phone_id=phone.id, round=round_no, state=ATTEMPT_PLACING, started_at=now)
        session.add(attempt)
        phone.calls, phone.state, phone.next_at, phone.updated_at = round_no, PHONE_CALLING, None, now
        session.flush()
        text = prompts.outbound(cfg.greeting, [visit_of(a) for _, a in items], local_now.date())
        plan = CallPlan(
            attempt.id,
            phone.id,
            phone.campaign_id,
            phone.phone,
            round_no,
            text,
            tuple(Asked(a.id, a.starts_at) for _, a in items),
            now,
            cfg.ring_seconds,
            cfg.dtmf_seconds,
        )
        attempt.channel_id = plan.channel_id
        plans.append(plan)
    return plans


# Each of these two is one conditional UPDATE, not read-then-write: a patient answering at once
# sends the StasisStart (answered) while the originate's reply (ringing) is still on its way,
# and the two run in separate transactions; a read-then-write «ringing» committed last wrote
# over «talking».


def ringing(session: Session, attempt_id: int) -> None:
    session.execute(
        update(VoiceAttempt)
        .where(VoiceAttempt.id == attempt_id, VoiceAttempt.state == ATTEMPT_PLACING)
        .values(state=ATTEMPT_RINGING)
    )


def answered(session: Session, attempt_id: int, now: datetime, prompt: str) -> None:
    session.execute(
        update(VoiceAttempt)
        .where(VoiceAttempt.id == attempt_id, VoiceAttempt.state.in_((ATTEMPT_PLACING, ATTEMPT_RINGING)))
        .values(state=ATTEMPT_TALKING, answered_at=now, prompt=prompt)
    )


def finish(
    session: Session,
    attempt_id: int,
    outcome: str,
    now: datetime,
    *,
    digits: str = "",
    answer: Answer | None = None,
    note: str = "",
) -> bool:
    """The attempt's end and what follows for its phone. False if it had ended already (a
    second report of the same end changes nothing)."""
    attempt = session.get(VoiceAttempt, attempt_id)
    if attempt is None or attempt.state == ATTEMPT_DONE:
        return False
    attempt.state, attempt.outcome, attempt.ended_at = ATTEMPT_DONE, outcome, now
    attempt.digits, attempt.note = digits[:32], note
    phone = session.get(VoicePhone, attempt.phone_id)
    assert phone is not None
    phone.last_outcome, phone.updated_at = outcome, now
    if answer is not None:
        for item in session.scalars(select(VoiceItem).where(VoiceItem.phone_id == phone.id)):
            if item.appointment_id in (*answer.changed, *answer.unchanged, *answer.stale):
                item.result = OUT_STALE if item.appointment_id in answer.stale else outcome
    if outcome in (OUT_CONFIRMED, OUT_CANCELLED):
        phone.state = PHONE_ANSWERED
    elif outcome == OUT_OPERATOR:
        phone.state = PHONE_OPERATOR
    elif outcome == OUT_STALE:
        phone.state = PHONE_SETTLED
    elif outcome in UNREACHED_OUTCOMES:
        _after_unreached(session, phone, now)
    else:
        phone.state = PHONE_SETTLED
    return True


def _after_unreached(session: Session, phone: VoicePhone, now: datetime) -> None:
    cfg = robot_settings.read(session)
    if phone.calls <= cfg.retries:
        retry = now + timedelta(minutes=cfg.retry_minutes)
        local_retry = local(session, retry)
        start = robot_settings.minutes_of(cfg.hours_from)
        minute = local_retry.hour * 60 + local_retry.minute
        if minute < start:  # before the hours: at their start, the same day
            retry += timedelta(minutes=start - minute)
            minute = start
        if (
            minute < robot_settings.minutes_of(cfg.hours_to)
            and local_retry.date() == local(session, now).date()
        ):
            phone.state, phone.next_at = PHONE_WAITING, retry
            return
    escalate(session, phone, now)


def escalate(session: Session, phone: VoicePhone, now: datetime) -> None:
    """Unreached after every call: an SMS with the appointments (one per visit time: the
    SMS ledger's reminder key, so a reminder already live is not sent again), then
    «Не дозвонились» at the deadline. Without SMS: «Не дозвонились» at once."""
    cfg = robot_settings.read(session)
    items = open_items(session, phone)
    if not items:
        phone.state, phone.next_at = PHONE_SETTLED, None
        return
    if not cfg.send_sms:
        phone.state, phone.next_at = PHONE_UNREACHED, None
        return
    clinic = read_settings(session)
    first = sending.load_appointment(session, items[0][1].id)
    assert first is not None
    rows = sending.reminders_of(session, [first.id]).get(first.id, [])
    live = sending.live_among(rows, first)
    if live is not None:
        message_id = live.id
    else:
        patient = session.get(Patient, phone.patient_id) if phone.patient_id else None
        text = prompts.sms_text(clinic.name or "", [visit_of(a) for _, a in items], clinic.phone or "")
        draft = ledger.Draft(
            phone=phone.phone.lstrip("+"),
            text=text,
            key=sending.fresh_reminder_key(rows, first),
            source=SMS_SOURCE,
            patient_id=patient.id if patient else None,
            appointment_id=first.id,
            expires_at=rules.visit_moment(clinic, first.starts_at),
        )
        row, _created = ledger.queue(session, clinic, draft, now=now)
        message_id = row.id
        if row.state == MSG_SKIPPED:  # stop-list or no consent: no SMS will come, nothing to wait for
            phone.sms_message_id = message_id
            phone.state, phone.next_at = PHONE_UNREACHED, None
            return
    phone.sms_message_id = message_id
    phone.state, phone.next_at = PHONE_SMS, None
    phone.sms_deadline = now + timedelta(minutes=cfg.sms_wait_minutes)


def sweep(session: Session, now: datetime) -> None:
    """Deadlines and endings: an SMS unanswered by its deadline puts the phone on the
    «Не дозвонились» list (answered meanwhile by any channel: settled); a campaign with no
    open phone is done."""
    for phone in session.scalars(
        select(VoicePhone).where(VoicePhone.state == PHONE_SMS, VoicePhone.sms_deadline <= now)
    ):
        phone.state = PHONE_UNREACHED if open_items(session, phone) else PHONE_SETTLED
        phone.updated_at = now
    session.flush()
    for campaign in session.scalars(select(VoiceCampaign).where(VoiceCampaign.state == CAMPAIGN_RUNNING)):
        still = session.scalar(
            select(func.count(VoicePhone.id)).where(
                VoicePhone.campaign_id == campaign.id, VoicePhone.state.in_(PHONE_OPEN)
            )
        )
        if not still:
            campaign.state, campaign.finished_at = CAMPAIGN_DONE, now
            session.add(
                JournalEntry(
                    at=now,
                    service=JOURNAL_SERVICE,
                    level="info",
                    message=f"Обзвон №{campaign.id} на {campaign.visit_date:%d.%m.%Y} завершён",
                )
            )


def recover(session: Session, now: datetime, alive: set[str] | None = None) -> list[int]:
    """After a restart: every attempt still live whose channel is not in `alive` (None: no
    channel survived) ended as interrupted, its phone retried in a later round — never
    called again in this one. Returns the attempt ids settled."""
    settled: list[int] = []
    for attempt in session.scalars(select(VoiceAttempt).where(VoiceAttempt.state.in_(ATTEMPT_LIVE))).all():
        if alive is not None and attempt.channel_id in alive:
            continue
        if finish(
            session, attempt.id, OUT_INTERRUPTED, now, note="АТС или робот перезапущены во время звонка"
        ):
            settled.append(attempt.id)
    return settled


def is_live(state: str) -> bool:
    return state in (ATTEMPT_PLACING, ATTEMPT_RINGING, ATTEMPT_TALKING)


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
