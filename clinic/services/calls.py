"""Calls: the patient lookup behind the screen pop, and the call log.

Shared by the FastAGI lookup (caller → patient), the ARI app (which writes the log) and
the web pages (call log, missed calls, the patient card's calls). Everything here is
synchronous SQLAlchemy; the async processes run it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from clinic.models import (
    CALL_STATES,
    DIRECTIONS,
    STATUS_CANCELLED,
    Appointment,
    Call,
    ClinicSettings,
    Patient,
    User,
)
from clinic.models.calls import (
    DIRECTION_INBOUND,
    RESULT_CANCELLED,
    RESULT_MISSED,
    STATE_ENDED,
    result_title,
)
from clinic.phones import display, match_key
from clinic.softphone import owner_sip_id


def find_patients_by_number(session: Session, number: str, limit: int = 5) -> list[Patient]:
    """Patients whose phone ends with the number's last 10 digits (caller IDs come in any
    format: 8916…, +7916…, 916…)."""
    key = match_key(number or "")
    if len(key) < 10:
        return []
    rows = session.scalars(
        select(Patient)
        .where(or_(Patient.phone_key == key, Patient.phone_extra_key == key))
        .order_by(Patient.id)
        .limit(limit)
    ).all()
    return list(rows)


def patient_brief_by_number(session: Session, number: str) -> tuple[int | None, str]:
    """(id, full name) of the first patient with this number, or (None, ""): a plain column
    query, cheap enough for the call path."""
    key = match_key(number or "")
    if len(key) < 10:
        return None, ""
    t = Patient.__table__.c  # the table, not the mapped class: no ORM layer on the call path
    row = session.execute(
        select(t.id, t.last_name, t.first_name, t.patronymic)
        .where(or_(t.phone_key == key, t.phone_extra_key == key))
        .order_by(t.id)
        .limit(1)
    ).first()
    if row is None:
        return None, ""
    return row[0], " ".join(p for p in row[1:] if p)


def upcoming_appointments(
    session: Session, patient_id: int, now: datetime, limit: int = 5
) -> list[Appointment]:
    rows = session.scalars(
        select(Appointment)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.starts_at >= now,
            Appointment.status != STATUS_CANCELLED,
        )
        .options(selectinload(Appointment.doctor), selectinload(Appointment.cabinet))
        .order_by(Appointment.starts_at)
        .limit(limit)
    ).all()
    return list(rows)


def patient_summary(session: Session, patient: Patient, now: datetime) -> dict[str, Any]:
    """What the screen pop shows: the card's head and the upcoming appointments."""
    return {
        "id": patient.id,
        "name": patient.full_name,
        "birth_date": patient.birth_date.strftime("%d.%m.%Y") if patient.birth_date else "",
        "phone": display(patient.phone),
        "appointments": [
            {
                "id": a.id,
                "starts_at": a.starts_at.strftime("%d.%m.%Y %H:%M"),
                "doctor": a.doctor.short_name if a.doctor else "",
                "cabinet": a.cabinet.title if a.cabinet else "",
                "extra_info": a.extra_info,
            }
            for a in upcoming_appointments(session, patient.id, now)
        ],
    }


def trunk_configured(session: Session) -> bool:
    settings = session.scalars(select(ClinicSettings).order_by(ClinicSettings.id)).first()
    return bool(settings and (settings.trunk_host or "").strip())


def telephony_user_by_extension(session: Session, extension: str) -> User | None:
    user = session.scalars(select(User).where(User.extension == extension, User.is_active.is_(True))).first()
    return user if user is not None and user.has_telephony else None


def telephony_user_by_sip_id(session: Session, sip_id: str) -> User | None:
    user = session.scalars(select(User).where(User.sip_id == sip_id, User.is_active.is_(True))).first()
    return user if user is not None and user.has_telephony else None


# ------------------------------------------------------------------------ the call log


@dataclass(frozen=True)
class LogFilter:
    user_id: int | None = None  # None: everyone's (admins)
    patient_id: int | None = None
    missed_only: bool = False
    since: datetime | None = None
    limit: int = 200


def call_log(session: Session, flt: LogFilter) -> list[Call]:
    query = (
        select(Call).options(selectinload(Call.recordings)).order_by(Call.started_at.desc(), Call.id.desc())
    )
    if flt.user_id is not None:
        query = query.where(Call.user_id == flt.user_id)
    if flt.patient_id is not None:
        query = query.where(Call.patient_id == flt.patient_id)
    if flt.missed_only:
        query = query.where(
            Call.direction == DIRECTION_INBOUND, Call.result == RESULT_MISSED, Call.callback_call_id.is_(None)
        )
    if flt.since is not None:
        query = query.where(Call.started_at >= flt.since)
    return list(session.scalars(query.limit(flt.limit)).all())


def missed_calls(session: Session, user_id: int | None, days: int = 7) -> list[Call]:
    """Inbound calls nobody answered and nobody called back yet. Missed calls ring every
    registrar, so the list is the clinic's, not one registrar's (user_id is ignored)."""
    # UTC like the stored instants: SQLite compares the text, and drops any offset
    since = datetime.now(UTC) - timedelta(days=days)
    return call_log(session, LogFilter(missed_only=True, since=since))


def call_row(call: Call, names: dict[int, str] | None = None) -> dict[str, Any]:
    """A call as the log pages and the API show it."""
    names = names or {}
    return {
        "id": call.id,
        "uid": call.uid,
        "direction": call.direction,
        "direction_title": DIRECTIONS.get(call.direction, call.direction),
        "user_id": call.user_id,
        "user": names.get(call.user_id or 0, ""),
        "patient_id": call.patient_id,
        "number": call.number,
        "number_display": display(call.number) if call.number.startswith("+") else call.number,
        "caller_name": call.caller_name,
        "state": call.state,
        "state_title": CALL_STATES.get(call.state, call.state),
        "result": call.result,
        "result_title": result_title(call.direction, call.result) if call.state == STATE_ENDED else "",
        "reason": call.reason,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration_s": call.duration_s,
        "recordings": [
            {"id": r.id, "name": r.name, "state": r.state, "duration_s": r.duration_s}
            for r in call.recordings
        ],
    }


def user_names(session: Session) -> dict[int, str]:
    return {u.id: (u.full_name or u.login) for u in session.scalars(select(User)).all()}


# -- calls placed and answered on the phones alone (no ARI) ------------------------------

# Dial()'s DIALSTATUS → our result; anything else (CONGESTION, CHANUNAVAIL, …) failed. CANCEL
# is the caller giving up: a patient who did so was missed, a registrar cancelled his call.
_DIAL_RESULTS = {"ANSWER": "answered", "BUSY": "busy", "NOANSWER": "missed", "CANCEL": "missed"}
_DIAL_REASONS = {
    "BUSY": "Занято",
    "NOANSWER": "Нет ответа",
    "CANCEL": "Вызов отменён",
    "CONGESTION": "Линия перегружена или не настроена",
    "CHANUNAVAIL": "Абонент недоступен",
}
PHONE_CALL_KINDS = ("internal", "outbound", "inbound")


@dataclass(frozen=True)
class PhoneCallReport:
    """What the dialplan's hangup handler knows about a call it placed with Dial()."""

    uniqueid: str  # the calling channel's UNIQUEID: one log row per call, however often reported
    kind: str  # internal | outbound (from a registrar's phone) | inbound (ARI was down)
    endpoint: str  # the registrar's endpoint (sip_id): the caller's, or for inbound who answered
    number: str  # the other party: an extension, or a number as dialled / as it called
    dial_status: str
    answered_s: int  # ANSWEREDTIME: seconds talked
    dialed_s: int  # DIALEDTIME: seconds from Dial() to its end


def log_phone_call(session: Session, report: PhoneCallReport, *, now: datetime) -> Call | None:
    """Write the call log row of a call that never went through the ARI app; None if this
    call is already logged (a repeated report)."""
    if report.kind not in PHONE_CALL_KINDS:
        raise ValueError(f"unknown call kind {report.kind!r}")
    uid = f"p-{report.uniqueid}"[:40]
    if session.scalar(select(Call.id).where(Call.uid == uid)) is not None:
        return None
    user = (
        session.scalars(select(User).where(User.sip_id == owner_sip_id(report.endpoint))).first()
        if report.endpoint
        else None
    )
    status = report.dial_status.upper()
    result = _DIAL_RESULTS.get(status, "failed")
    if status == "CANCEL" and report.kind != "inbound":
        result = RESULT_CANCELLED
    number = report.number.strip()
    patient_id, name = (None, "")
    if report.kind != "internal":
        patient_id, name = patient_brief_by_number(session, number)
    answered = result == "answered"
    call = Call(
        uid=uid,
        direction=DIRECTION_INBOUND if report.kind == "inbound" else "outbound",
        user_id=user.id if user is not None else None,
        patient_id=patient_id,
        number=number[:32],
        caller_name=name[:200],
        origin="inbound" if report.kind == "inbound" else "phone",
        state=STATE_ENDED,
        result=result,
        reason="" if answered else _DIAL_REASONS.get(status, "Вызов не удался"),
        started_at=now - timedelta(seconds=max(0, report.dialed_s)),
        answered_at=now - timedelta(seconds=max(0, report.answered_s)) if answered else None,
        ended_at=now,
    )
    session.add(call)
    session.flush()
    return call
