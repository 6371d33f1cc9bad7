"""The clinic's wall clock, one place for every process.

Appointments are stored in the clinic's local time (naive); every other moment (calls, SMS,
exchange log, robot runs) is stored as UTC (SQLite hands those back naive). What a person
sees is always the clinic's local time, whatever zone the server runs in.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import ClinicSettings
from clinic.models.base import as_aware

DEFAULT_TIMEZONE = "Europe/Moscow"


def zone_named(name: str | None) -> ZoneInfo:
    """The zone of that IANA name; the default for an empty, mistyped or directory name."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def clinic_zone(session: Session) -> ZoneInfo:
    """The clinic's time zone from its settings (read only: a GET must not create the row)."""
    name = session.scalar(select(ClinicSettings.timezone).order_by(ClinicSettings.id).limit(1))
    return zone_named(name)


def clinic_now(session: Session) -> datetime:
    """The clinic's wall-clock time, naive like Appointment.starts_at."""
    return datetime.now(clinic_zone(session)).replace(tzinfo=None, microsecond=0)


def to_clinic(moment: datetime, zone: ZoneInfo) -> datetime:
    """A stored instant (aware, or naive UTC) as the clinic's aware local time."""
    return as_aware(moment).astimezone(zone)
