"""Our own voice robot (on the clinic's Asterisk) as a reminder channel.

Dispatch: a due reminder adds its appointment to the robot's campaign for the visit's day
(the one running or paused, else a new one), under the patient's phone: one call reads all
of a phone's visits, so a second rule or a second visit of the same phone joins the phone
already waiting instead of calling twice. A phone the robot had finished with (answered,
settled, «Не дозвонились») is asked again about the new visit only. The robot's dialer
(ari_app/robot) places the calls within its channel limit and calling hours, with its own
retries and escalation (docs/voice-robot.md).

Everything a reminder does here is one transaction: the campaign rows and the reminder's
«Отправлено» are committed together, so a restart neither loses nor doubles a call.
A visit confirmed elsewhere, cancelled or moved before the call is not read (the dialer
asks only about booked, unanswered visits), so no withdraw step is needed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from clinic.models import Appointment
from clinic.models.reminders import JOB_PLANNED, JOB_SENT, JOB_SKIPPED, ReminderJob
from clinic.models.voice_robot import (
    CAMPAIGN_PAUSED,
    CAMPAIGN_RUNNING,
    PHONE_OPEN,
    PHONE_WAITING,
    VoiceCampaign,
    VoiceItem,
    VoicePhone,
)
from clinic.phones import PhoneError, normalize
from clinic.reminders.channels import CHANNEL_VOICE, Channel, Context
from clinic.services.settings import read_settings

NO_TRUNK = "Транк не настроен: робот не может звонить пациентам («Администрирование → Транк»)"


def dispatch(ctx: Context, job_ids: list[int]) -> None:
    now = ctx.clock()
    with ctx.sessions() as session, session.begin():
        jobs = session.scalars(
            select(ReminderJob)
            .where(ReminderJob.id.in_(job_ids), ReminderJob.state == JOB_PLANNED)
            .order_by(ReminderJob.id)
        ).all()
        for job in jobs:
            appointment = session.scalar(
                select(Appointment)
                .options(joinedload(Appointment.patient))
                .where(Appointment.id == job.appointment_id)
            )
            assert appointment is not None
            why, phone = _phone_of(appointment)
            if phone is None:
                job.state, job.note, job.done_at = JOB_SKIPPED, why, now
                continue
            campaign = _campaign_for(session, appointment, now)
            _ask(session, campaign, phone, appointment, now)
            job.state, job.done_at = JOB_SENT, now
            job.note = f"Передано голосовому роботу: обзвон №{campaign.id}"


def _phone_of(appointment: Appointment) -> tuple[str, str | None]:
    patient = appointment.patient
    if not patient.consent_calls:
        return "Пациент не дал согласия на звонки: робот не звонит", None
    try:
        return "", normalize(patient.phone or "")
    except PhoneError:
        return "У пациента нет телефона: робот не звонит", None


def _campaign_for(session: Session, appointment: Appointment, now: datetime) -> VoiceCampaign:
    day = appointment.starts_at.date()
    campaign = session.scalar(
        select(VoiceCampaign)
        .where(VoiceCampaign.visit_date == day, VoiceCampaign.state.in_((CAMPAIGN_RUNNING, CAMPAIGN_PAUSED)))
        .order_by(VoiceCampaign.id)
        .limit(1)
    )
    if campaign is None:
        campaign = VoiceCampaign(visit_date=day, state=CAMPAIGN_RUNNING, created_at=now, created_by=None)
        session.add(campaign)
        session.flush()
    return campaign


def _ask(
    session: Session, campaign: VoiceCampaign, phone: str, appointment: Appointment, now: datetime
) -> None:
    row = session.scalar(
        select(VoicePhone).where(VoicePhone.campaign_id == campaign.id, VoicePhone.phone == phone)
    )
    if row is None:
        row = VoicePhone(
            campaign_id=campaign.id,
            phone=phone,
            patient_id=appointment.patient_id,
            next_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
    elif row.state not in PHONE_OPEN:  # finished with this phone: ask again, about what is open now
        row.state, row.next_at, row.updated_at = PHONE_WAITING, now, now
    known = session.scalar(
        select(VoiceItem.id).where(VoiceItem.phone_id == row.id, VoiceItem.appointment_id == appointment.id)
    )
    if known is None:
        session.add(
            VoiceItem(phone_id=row.id, appointment_id=appointment.id, starts_at=appointment.starts_at)
        )


def _problem(session: Session) -> str | None:
    return None if read_settings(session).trunk_host else NO_TRUNK


CHANNEL = Channel(
    key=CHANNEL_VOICE,
    title="Голосовой робот (своя АТС)",
    needs_template=False,
    dispatch=dispatch,
    withdraw=None,
    problem=_problem,
)
