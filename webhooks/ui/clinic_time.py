"""The clinic's wall clock on pages: every time a person sees is in the clinic's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, g
from sqlalchemy.orm import Session

from clinic import clock
from webhooks.ui.db import db


def clinic_now(session: Session) -> datetime:
    """Now in the clinic's time zone, naive, comparable with Appointment.starts_at."""
    return clock.clinic_now(session)


def request_zone() -> ZoneInfo:
    """The clinic's zone, read once per request."""
    zone = g.get("clinic_zone")
    if zone is None:
        zone = g.clinic_zone = clock.clinic_zone(db())
    return zone


def local(value: datetime | None) -> datetime | None:
    """Jinja filter: a stored instant (aware, or naive UTC) as the clinic's local time.
    Not for Appointment.starts_at, which is already the clinic's wall clock."""
    return clock.to_clinic(value, request_zone()) if value is not None else None


def init_clinic_time(app: Flask) -> None:
    app.jinja_env.filters["local"] = local
