"""What presence asks of the database (run in the call-log process, as calls/queries.py):
who has a phone, which of his endpoints ring, and who may see the directory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import User
from clinic.softphone import DEFAULT_RING, dial_targets


@dataclass(frozen=True)
class Colleague:
    """A user with a working SIP account, as the directory shows him."""

    id: int
    name: str
    extension: str
    devices: tuple[str, ...]  # Asterisk device names of the phones that ring for him ("PJSIP/reg101")


@dataclass(frozen=True)
class PresenceDirectory:
    people: tuple[Colleague, ...]  # by extension
    recipients: frozenset[int]  # every active user: any of them may have the directory open


def _devices(sip_id: str, ring: str | None) -> tuple[str, ...]:
    return tuple(dial_targets(sip_id, ring or DEFAULT_RING))


def presence_directory(s: Session) -> PresenceDirectory:
    rows = s.execute(
        select(
            User.id,
            User.login,
            User.full_name,
            User.extension,
            User.sip_id,
            User.sip_md5_cred,
            User.softphone_ring,
        ).where(User.is_active.is_(True))
    ).all()
    people = [
        Colleague(r.id, r.full_name or r.login, r.extension, _devices(r.sip_id, r.softphone_ring))
        for r in rows
        if r.extension and r.sip_id and r.sip_md5_cred  # User.has_telephony, without loading the rows
    ]
    people.sort(key=lambda c: (len(c.extension), c.extension))
    return PresenceDirectory(tuple(people), frozenset(r.id for r in rows))
