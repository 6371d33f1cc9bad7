"""Campaigns: the next day's appointments grouped per phone (one call reads all of a
phone's visits), their progress, and the «Не дозвонились» list."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from clinic.models import Appointment, JournalEntry, Patient
from clinic.models.schedule import STATUS_BOOKED
from clinic.models.voice_robot import (
    CAMPAIGN_DONE,
    CAMPAIGN_PAUSED,
    CAMPAIGN_RUNNING,
    OUTCOMES,
    PHONE_STATES,
    PHONE_UNREACHED,
    VoiceAttempt,
    VoiceCampaign,
    VoiceItem,
    VoicePhone,
)
from clinic.phones import PhoneError, normalize
from clinic.services import ValidationError
from clinic.voice_robot.answers import JOURNAL_SERVICE


def candidates(session: Session, visit_date: date) -> dict[str, list[Appointment]]:
    """The day's booked appointments not answered yet, of patients who agreed to calls, by
    phone (E.164), each list by time."""
    start = datetime.combine(visit_date, datetime.min.time())
    rows = session.scalars(
        select(Appointment)
        .join(Patient, Patient.id == Appointment.patient_id)
        .options(joinedload(Appointment.patient))
        .where(
            Appointment.starts_at >= start,
            Appointment.starts_at < start + timedelta(days=1),
            Appointment.status == STATUS_BOOKED,
            Appointment.confirmation_status == "",
            Patient.consent_calls.is_(True),
            Patient.phone.is_not(None),
        )
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    grouped: dict[str, list[Appointment]] = {}
    for appt in rows:
        try:
            phone = normalize(appt.patient.phone or "")
        except PhoneError:
            continue
        grouped.setdefault(phone, []).append(appt)
    return grouped


def create(session: Session, visit_date: date, user_id: int | None, now: datetime) -> VoiceCampaign:
    """A new campaign for `visit_date`; the caller commits. Refused (Russian) while another
    campaign for that day is running, or when there is nobody to call."""
    running = session.scalar(
        select(VoiceCampaign.id).where(
            VoiceCampaign.visit_date == visit_date,
            VoiceCampaign.state.in_((CAMPAIGN_RUNNING, CAMPAIGN_PAUSED)),
        )
    )
    if running is not None:
        raise ValidationError({"visit_date": f"Обзвон на {visit_date:%d.%m.%Y} уже идёт (№{running})"})
    grouped = candidates(session, visit_date)
    if not grouped:
        raise ValidationError(
            {"visit_date": f"На {visit_date:%d.%m.%Y} нет записей, ожидающих подтверждения"}
        )
    campaign = VoiceCampaign(
        visit_date=visit_date, state=CAMPAIGN_RUNNING, created_at=now, created_by=user_id
    )
    session.add(campaign)
    session.flush()
    for phone, appts in grouped.items():
        row = VoicePhone(
            campaign_id=campaign.id, phone=phone, patient_id=appts[0].patient_id, next_at=now, updated_at=now
        )
        session.add(row)
        session.flush()
        session.add_all(VoiceItem(phone_id=row.id, appointment_id=a.id, starts_at=a.starts_at) for a in appts)
    total = sum(len(a) for a in grouped.values())
    session.add(
        JournalEntry(
            at=now,
            service=JOURNAL_SERVICE,
            level="info",
            message=(
                f"Обзвон №{campaign.id} на {visit_date:%d.%m.%Y}: {total} записей, {len(grouped)} телефонов"
            ),
        )
    )
    session.flush()
    return campaign


def set_state(session: Session, campaign_id: int, state: str) -> VoiceCampaign:
    campaign = session.get(VoiceCampaign, campaign_id)
    if campaign is None:
        raise ValidationError({"campaign": "Обзвон не найден"})
    if campaign.state == CAMPAIGN_DONE:
        raise ValidationError({"campaign": "Обзвон уже завершён"})
    if state not in (CAMPAIGN_RUNNING, CAMPAIGN_PAUSED):
        raise ValidationError({"campaign": "Неизвестное действие"})
    campaign.state = state
    return campaign


@dataclass
class Progress:
    campaign: VoiceCampaign
    phones: int
    appointments: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    calls: int
    rows: list[VoicePhone]

    def state_rows(self) -> list[tuple[str, int]]:
        return [(PHONE_STATES[k], v) for k, v in self.by_state.items() if v]

    def outcome_rows(self) -> list[tuple[str, int]]:
        return [(OUTCOMES.get(k, k), v) for k, v in self.by_outcome.items() if v]


def progress(session: Session, campaign_id: int) -> Progress | None:
    campaign = session.get(VoiceCampaign, campaign_id)
    if campaign is None:
        return None
    rows = list(
        session.scalars(
            select(VoicePhone)
            .where(VoicePhone.campaign_id == campaign_id)
            .options(selectinload(VoicePhone.items), selectinload(VoicePhone.attempts))
            .order_by(VoicePhone.id)
        )
    )
    by_state = Counter(r.state for r in rows)
    by_outcome = Counter(a.outcome for r in rows for a in r.attempts if a.outcome)
    return Progress(
        campaign,
        len(rows),
        sum(len(r.items) for r in rows),
        {k: by_state.get(k, 0) for k in PHONE_STATES},
        dict(by_outcome),
        sum(len(r.attempts) for r in rows),
        rows,
    )


def recent(session: Session, limit: int = 20) -> list[VoiceCampaign]:
    return list(session.scalars(select(VoiceCampaign).order_by(VoiceCampaign.id.desc()).limit(limit)))


def unreached(session: Session) -> list[dict[str, Any]]:
    """«Не дозвонились»: phones unreached after calls and SMS, with whom and what to ask."""
    rows = session.scalars(
        select(VoicePhone)
        .where(VoicePhone.state == PHONE_UNREACHED)
        .options(selectinload(VoicePhone.items), selectinload(VoicePhone.attempts))
        .order_by(VoicePhone.updated_at, VoicePhone.id)
    ).all()
    out: list[dict[str, Any]] = []
    for row in rows:
        patient = session.get(Patient, row.patient_id) if row.patient_id else None
        appts = [session.get(Appointment, i.appointment_id) for i in row.items]
        out.append(
            {
                "phone": row,
                "patient": patient,
                "appointments": [a for a in appts if a is not None],
                "calls": len(row.attempts),
            }
        )
    return out


def mark_called_back(session: Session, phone_id: int, uid: str) -> VoicePhone:
    row = session.get(VoicePhone, phone_id)
    if row is None or row.state != PHONE_UNREACHED:
        raise ValidationError({"phone": "Этого номера нет в списке «Не дозвонились»"})
    row.called_back_uid = uid[:40]
    return row


def attempts_of(session: Session, phone_id: int) -> list[VoiceAttempt]:
    return list(
        session.scalars(
            select(VoiceAttempt).where(VoiceAttempt.phone_id == phone_id).order_by(VoiceAttempt.id)
        )
    )
