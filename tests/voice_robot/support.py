"""A small clinic for the robot's core tests: a doctor, patients with phones, the next
day's appointments, and a clock the tests move forward (aware UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from clinic.models import Appointment, Employee, Patient, Service
from clinic.models.voice_robot import VoiceRobotSettings

# 12:00 in Moscow (the clinic's default zone): inside the default calling hours
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
VISIT_DAY = date(2026, 12, 8)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def seed(
    sessions: sessionmaker[Session], phones: list[str], per_phone: int = 1, day: date = VISIT_DAY
) -> list[int]:
    """Appointments on `day` (per_phone for each phone), one patient per phone; their ids."""
    ids: list[int] = []
    with sessions() as s, s.begin():
        doc = Employee(last_name="Терапевтов", first_name="Олег", patronymic="Ильич", specialty="Терапевт")
        svc = Service(code=f"K{len(phones)}", name="Консультация")
        s.add_all([doc, svc])
        s.flush()
        for n, phone in enumerate(phones):
            p = Patient(last_name=f"Пациентов{n}", first_name="Иван", phone=phone)
            s.add(p)
            s.flush()
            for k in range(per_phone):
                start = datetime.combine(day, datetime.min.time()) + timedelta(
                    hours=9, minutes=20 * (n * per_phone + k)
                )
                a = Appointment(patient_id=p.id, doctor_id=doc.id, service_id=svc.id, starts_at=start)
                s.add(a)
                s.flush()
                ids.append(a.id)
    return ids


def configure(sessions: sessionmaker[Session], **values: object) -> None:
    with sessions() as s, s.begin():
        row = s.query(VoiceRobotSettings).first()
        if row is None:
            row = VoiceRobotSettings()
            s.add(row)
        for key, value in values.items():
            setattr(row, key, value)
