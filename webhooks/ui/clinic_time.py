"""The clinic's wall clock: appointments are stored in naive local time of the clinic's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from clinic.services.settings import read_settings

FALLBACK_ZONE = "Europe/Moscow"


def clinic_now(session: Session) -> datetime:
    """Now in the clinic's time zone, naive, comparable with Appointment.starts_at."""
    try:
        zone = ZoneInfo(read_settings(session).timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(FALLBACK_ZONE)
    return datetime.now(zone).replace(tzinfo=None)
