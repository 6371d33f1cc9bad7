"""The clinic's «today» wherever the server runs: the demo seeds the clinic's today and
tomorrow, and a baby born today by the clinic's calendar can be registered (Kiritimati is
UTC+14, Pago Pago UTC-11: their dates always differ)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, ClinicSettings
from clinic.seed import clinic_today, seed_demo
from clinic.services.schedule import create_patient

CLINIC = ZoneInfo("Pacific/Kiritimati")


@pytest.fixture()
def server_far_behind(server_zone: Callable[[str], None]) -> None:
    server_zone("Pacific/Pago_Pago")


@pytest.fixture()
def kiritimati(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The demo clinic, moved to Kiritimati (a restart tops its visits up)."""
    seed_demo(sessions, datetime.now(CLINIC).date() - timedelta(days=5))
    with transaction(sessions) as s:
        s.scalars(select(ClinicSettings)).one().timezone = "Pacific/Kiritimati"
    return sessions


def test_demo_visits_are_on_the_clinics_today_and_tomorrow(server_far_behind: None, kiritimati: Any) -> None:
    today = datetime.now(CLINIC).date()
    assert clinic_today(kiritimati) == today != datetime.now().date()
    seed_demo(kiritimati, clinic_today(kiritimati))
    with kiritimati() as s:
        for day in (today, today + timedelta(days=1)):
            start = datetime.combine(day, datetime.min.time())
            count = s.scalar(select(func.count(Appointment.id)).where(
                Appointment.starts_at >= start, Appointment.starts_at < start + timedelta(days=1)))
            assert count, day


def test_born_today_by_the_clinics_calendar(server_far_behind: None, kiritimati: Any) -> None:
    with transaction(kiritimati) as s:
        born = datetime.now(CLINIC).date()
        data = {"last_name": "Новорождённый", "first_name": "Иван", "birth_date": born.isoformat()}
        patient = create_patient(s, data)
        assert patient.birth_date == born
