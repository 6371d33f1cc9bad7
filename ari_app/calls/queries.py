"""Everything the call service asks of the database, as plain functions of
`(session, *args)`. They run in the call-log process (store.py), so they are module-level
(a request pickles as a reference to the function) and return plain values, never ORM
objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from clinic import clock
from clinic.models import Call, CallLeg, CallRecording, Patient, User, utcnow
from clinic.models.calls import STATE_ENDED
from clinic.phones import match_key
from clinic.services import calls as calls_svc
from clinic.softphone import DEFAULT_RING


@dataclass(frozen=True)
class Actor:
    id: int
    admin: bool
    name: str
    extension: str
    sip_id: str
    has_telephony: bool
    ring: str = DEFAULT_RING  # which of his phones ring: sip / web / both (clinic/softphone.py)


@dataclass(frozen=True)
class Directory:
    users: dict[int, Actor]  # active users
    by_extension: dict[str, Actor]  # users with a working SIP account, by extension
    trunk: bool


def _actor_of(u: User) -> Actor:
    return Actor(u.id, u.is_admin, u.full_name or u.login, u.extension or "", u.sip_id or "", u.has_telephony,
                 u.softphone_ring or DEFAULT_RING)  # fmt: skip


def user_brief(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.id,
        "sip_id": user.sip_id or "",
        "extension": user.extension or "",
        "name": user.full_name or user.login,
        "ring": user.softphone_ring or DEFAULT_RING,
    }


# ---------------------------------------------------------------------------- reads


def directory(s: Session) -> Directory:
    users = {}
    by_extension = {}
    for u in s.scalars(select(User).where(User.is_active.is_(True))).all():
        a = _actor_of(u)
        users[u.id] = a
        if a.has_telephony:
            by_extension[a.extension] = a
    return Directory(users, by_extension, calls_svc.trunk_configured(s))


def session_epoch(s: Session, user_id: int) -> int | None:
    """The user's session epoch (logout and lock move it on), or None for a user who is
    gone, disabled or locked: the events stream's token names the epoch it was given in."""
    user = s.get(User, user_id)
    if user is None or not user.is_active or user.locked_at is not None:
        return None
    return user.session_epoch or 0


def user_by_extension(s: Session, extension: str) -> dict[str, Any] | None:
    return user_brief(calls_svc.telephony_user_by_extension(s, extension))


def number_target(s: Session, number: str, need_trunk: bool) -> tuple[bool, int | None, str]:
    """(trunk usable, patient id, patient name) for dialling `number`: one round trip."""
    if need_trunk and not calls_svc.trunk_configured(s):
        return False, None, ""
    found = calls_svc.find_patients_by_number(s, number, limit=1)
    return (True, found[0].id, found[0].full_name) if found else (True, None, "")


def patient_name(s: Session, patient_id: int) -> str | None:
    patient = s.get(Patient, patient_id)
    return patient.full_name if patient is not None else None


def patient_by_number(s: Session, number: str) -> tuple[int | None, str]:
    return calls_svc.patient_brief_by_number(s, number)


def logged_call(s: Session, uid: str) -> tuple[str, int | None] | None:
    """(reason, user id) of a call in the log, or None."""
    call = s.scalars(select(Call).where(Call.uid == uid)).first()
    return (call.reason, call.user_id) if call is not None else None


def inbound_parties(
    s: Session, did: str, patient_id: int | None, number: str, now: datetime | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Who an incoming call to `did` rings (the extension it names, else every registrar
    with telephony) and the caller's patient summary, if known. The upcoming appointments
    are those after `now`, by default the clinic's wall clock (whatever the server's zone)."""
    now = now or clock.clinic_now(s)
    key = match_key(did)[-8:]
    direct = calls_svc.telephony_user_by_extension(s, key) if key.isdigit() and 2 <= len(key) <= 8 else None
    if direct is not None:
        users = [user_brief(direct)]
    else:
        active = s.scalars(select(User).where(User.is_active.is_(True))).all()
        users = [user_brief(u) for u in active if u.has_telephony]
    patient = s.get(Patient, patient_id) if patient_id else None
    if patient is None:
        found = calls_svc.find_patients_by_number(s, number, limit=1)
        patient = found[0] if found else None
    summary = calls_svc.patient_summary(s, patient, now) if patient else None
    return [u for u in users if u is not None], summary


# ---------------------------------------------------------------------------- writes


# The frequent writes go to the table, not the mapped class: SQLAlchemy then skips its ORM
# bulk-persistence layer, a good part of this process's CPU in a burst of calls.
_CALLS = Call.__table__


def create_call(
    s: Session, fields: dict[str, Any], lookup_number: str | None = None
) -> tuple[int | None, str]:
    """Log a new call; with `lookup_number`, first find whose number it is and log the call
    with that patient. Returns (patient id, name) found, or (None, ""). (The call-log
    process runs these in batches: log_process._Batch, with the same three steps.)"""
    found = number_owner(s, lookup_number) if lookup_number else (None, "")
    insert_calls(s, [call_row(fields, found)])
    return found


def number_owner(s: Session, number: str) -> tuple[int | None, str]:
    return calls_svc.patient_brief_by_number(s, number)


def call_row(fields: dict[str, Any], owner: tuple[int | None, str]) -> dict[str, Any]:
    """The row of a new call, with the patient found by its number if there is one."""
    if owner[0] is None:
        return dict(fields)
    return {**fields, "patient_id": owner[0], "caller_name": owner[1]}


def insert_calls(s: Session, rows: list[dict[str, Any]]) -> None:
    """New calls, all with the same columns: one statement (a multi-row INSERT)."""
    s.execute(insert(_CALLS), rows)


def update_call(s: Session, uid: str, fields: dict[str, Any]) -> None:
    s.execute(update(_CALLS).where(_CALLS.c.uid == uid).values(**fields))


def end_call(s: Session, uid: str, legs: list[dict[str, Any]] | None, fields: dict[str, Any]) -> None:
    """The call's final state and all its legs, in one transaction."""
    update_call(s, uid, fields)
    call_id = s.scalar(select(Call.id).where(Call.uid == uid))
    if call_id is None or not legs:
        return
    # sent again after a call-log restart, it must not log the legs twice
    if s.scalar(select(CallLeg.id).where(CallLeg.call_id == call_id).limit(1)) is None:
        now = fields.get("ended_at")
        s.execute(
            insert(CallLeg),
            [{**leg, "call_id": call_id, "ended_at": leg["ended_at"] or now} for leg in legs],
        )


def discard_call(s: Session, uid: str) -> None:
    """Remove a call that never started (Asterisk refused to ring anyone), and the callback
    mark it may have set on a missed call, which stays missed."""
    call_id = s.scalar(select(Call.id).where(Call.uid == uid))
    if call_id is None:
        return
    s.execute(update(_CALLS).where(_CALLS.c.callback_call_id == call_id).values(callback_call_id=None))
    s.execute(delete(CallLeg).where(CallLeg.call_id == call_id))
    s.execute(delete(_CALLS).where(_CALLS.c.id == call_id))


def mark_called_back(s: Session, missed_uid: str, new_uid: str) -> None:
    missed = s.scalars(select(Call).where(Call.uid == missed_uid)).first()
    new = s.scalars(select(Call).where(Call.uid == new_uid)).first()
    if missed is not None and new is not None and missed.callback_call_id is None:
        missed.callback_call_id = new.id


def add_recording(s: Session, uid: str, name: str, patient_id: int | None, user_id: int | None) -> None:
    call = s.scalars(select(Call).where(Call.uid == uid)).first()
    if call is not None:
        s.add(CallRecording(call_id=call.id, name=name, patient_id=patient_id, user_id=user_id))


def finish_recording(s: Session, name: str, state: str, duration_s: int | None) -> None:
    rec = s.scalars(select(CallRecording).where(CallRecording.name == name)).first()
    if rec is not None and rec.state == "recording":
        rec.state, rec.duration_s, rec.ended_at = state, duration_s, utcnow()


def close_stale(s: Session, keep_uids: set[str], reason: str) -> list[str]:
    """End every call still active in the log whose uid is not in `keep_uids` (its channels
    are gone: Asterisk restarted, or this process did). Returns their uids."""
    now: datetime = utcnow()
    closed = []
    for call in s.scalars(select(Call).where(Call.state != STATE_ENDED)).all():
        if call.uid in keep_uids:
            continue
        call.state, call.ended_at, call.reason = STATE_ENDED, now, reason
        call.result = call.result or ("answered" if call.answered_at else "failed")
        for leg in call.legs:
            leg.ended_at = leg.ended_at or now
        for rec in call.recordings:
            if rec.state == "recording":
                rec.state, rec.ended_at = "done", now
        closed.append(call.uid)
    return closed
