"""Simultaneous bookings of one doctor's slot: exactly one wins, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment
from clinic.services import schedule
from clinic.services.schedule import ConflictError

pytestmark = pytest.mark.db

RACERS = 6


def test_only_one_of_simultaneous_bookings_succeeds(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        doctor = schedule.create_employee(s, {"last_name": "Орлова", "first_name": "Н"})
        patients = [
            schedule.create_patient(s, {"last_name": f"П{i}", "first_name": "И"}) for i in range(RACERS)
        ]
        doctor_id, patient_ids = doctor.id, [p.id for p in patients]
    start = (datetime.now() + timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(patient_id: int) -> None:
        barrier.wait()
        try:
            with transaction(sessions) as s:
                schedule.create_appointment(
                    s, {"patient_id": patient_id, "doctor_id": doctor_id, "starts_at": start.isoformat()}
                )
            result = "booked"
        except ConflictError:
            result = "conflict"
        except Exception as exc:  # noqa: BLE001 (reported, and fails the test below)
            result = f"error: {exc!r}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(pid,)) for pid in patient_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["booked"] + ["conflict"] * (RACERS - 1), outcomes
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Appointment)) == 1
