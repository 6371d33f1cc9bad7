"""A patient's answer to the own robot (an outbound call or his own call to the clinic)
written by the Mango robot's rules (clinic/robot/status.py): the same fields («Запись
подтверждена / отменена», confirmation status, source and time), the same cancellation as
staff's, the same stale-answer rule (an appointment cancelled, moved or confirmed by staff
since the call began is left alone). One exchange-log row per answer, as for Mango."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import Appointment, ExchangeLogEntry, JournalEntry
from clinic.robot.status import (
    ROBOT_SOURCES,
    STATUS_CODE,
    STATUS_TEXT,
    Seen,
    is_stale,
    with_status_text,
)
from clinic.services.schedule.appointments import cancel_appointment

SOURCE_OUTBOUND = "voice_robot"  # the robot called the patient
SOURCE_INBOUND = "voice_inbound"  # the patient called the clinic and pressed a digit
VOICE_SOURCES = (SOURCE_OUTBOUND, SOURCE_INBOUND)
CANCEL_REASONS = {
    SOURCE_OUTBOUND: "Отменено пациентом (голосовой робот)",
    SOURCE_INBOUND: "Отменено пациентом (звонок в клинику, робот)",
}
EXCHANGE_OWNER = "Голосовой робот (Asterisk)"
JOURNAL_SERVICE = "TVoiceRobot"

DIGIT_STATUS = {"1": 1, "2": 2}  # as Mango's digit_status default "1=1 2=2"


@dataclass
class Asked:
    """An appointment as it was read to the patient: its id and the time read."""

    appointment_id: int
    starts_at: datetime


@dataclass
class Answer:
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)

    @property
    def all_stale(self) -> bool:
        return bool(self.stale) and not self.changed and not self.unchanged

    def result_of(self, appointment_id: int) -> str:
        if appointment_id in self.changed:
            return "applied"
        return "stale" if appointment_id in self.stale else "repeated"


def apply_answer(
    session: Session,
    asked: list[Asked],
    status: int,
    *,
    source: str,
    asked_at: datetime,
    now: datetime,
    phone: str,
    ref: str,
) -> Answer:
    """Apply status 1 (confirm) or 2 (cancel) to the appointments read; the caller commits.
    `asked_at`: when the call began (a staff confirmation after it wins)."""
    code, text = STATUS_CODE[status], STATUS_TEXT[status]
    answer = Answer()
    ids = [a.appointment_id for a in asked]
    rows = {
        a.id: a for a in session.scalars(select(Appointment).where(Appointment.id.in_(ids)).with_for_update())
    }
    for item in asked:
        appt = rows.get(item.appointment_id)
        if appt is None:
            answer.stale.append(item.appointment_id)
            continue
        if appt.confirmation_status == code and appt.confirmation_source in (*ROBOT_SOURCES, *VOICE_SOURCES):
            answer.unchanged.append(appt.id)
            continue
        seen = Seen(
            task_id=0,
            task_sent_at=asked_at,
            task_created_at=asked_at,
            sent_starts_at=item.starts_at,
            appointment_id=appt.id,
            status=appt.status,
            starts_at=appt.starts_at,
            confirmation_status=appt.confirmation_status,
            # our own earlier answer is the robot's, not staff's, for the stale rule
            confirmation_source=ROBOT_SOURCES[0]
            if appt.confirmation_source in VOICE_SOURCES
            else appt.confirmation_source,
            confirmed_at=appt.confirmed_at,
            extra_info=appt.extra_info,
        )
        if is_stale(seen):
            answer.stale.append(appt.id)
            continue
        appt.confirmation_status = code
        appt.confirmation_source = source
        appt.confirmed_at = now
        appt.extra_info = with_status_text(appt.extra_info, text)
        session.flush()
        if code == "cancelled":  # the way staff cancel, with its checks and bookkeeping
            cancel_appointment(session, appt.id, {"reason": CANCEL_REASONS[source]})
        answer.changed.append(appt.id)
    session.add(
        ExchangeLogEntry(
            at=now,
            direction="in",
            owner=EXCHANGE_OWNER,
            payload=json.dumps(
                {"ref": ref, "phone": phone, "status": status, "source": source}, ensure_ascii=False
            ),
            response=json.dumps(
                {"changed": answer.changed, "unchanged": answer.unchanged, "stale": answer.stale}
            ),
            http_status=None,
        )
    )
    if answer.stale:
        session.add(
            JournalEntry(
                at=now,
                service=JOURNAL_SERVICE,
                level="warning",
                message=(
                    f"{ref}: ответ «{text}» по записям №{', №'.join(map(str, answer.stale))} не применён — "
                    "запись изменена после начала звонка"
                ),
            )
        )
    return answer


def upcoming_for_caller(
    session: Session, caller: str, now_local: datetime, limit: int = 3
) -> list[Appointment]:
    """The caller's upcoming appointments (booked, not answered yet), nearest first: what the
    inbound robot reads. Matched by the last 10 digits, as the patient lookup matches."""
    from clinic.models import Patient
    from clinic.models.schedule import STATUS_BOOKED
    from clinic.phones import match_key

    key = match_key(caller)
    if len(key) < 10:
        return []
    patients = select(Patient.id).where((Patient.phone_key == key) | (Patient.phone_extra_key == key))
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.patient_id.in_(patients),
                Appointment.starts_at >= now_local,
                Appointment.status == STATUS_BOOKED,
                Appointment.confirmation_status == "",
            )
            .order_by(Appointment.starts_at, Appointment.id)
            .limit(limit)
        )
    )
