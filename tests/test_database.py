"""Schema and demo data on the configured database (SQLite, or PostgreSQL via DATABASE_URL)."""

from datetime import date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import Appointment, Base, ClinicSettings, Employee, Patient, User
from clinic.phones import normalize
from clinic.security import verify_password
from clinic.seed import DEMO_PASSWORD, seed_demo

pytestmark = pytest.mark.db


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ; add an Alembic revision: {diff}"


def test_one_migration_head(database_url: str) -> None:
    """Parallel work may branch the history; a merge revision must join it before it lands,
    or `upgrade head` (ours, and every admin's) fails."""
    from alembic.script import ScriptDirectory

    from clinic.db import alembic_config

    assert len(ScriptDirectory.from_config(alembic_config(database_url)).get_heads()) == 1


def test_demo_clinic(sessions: sessionmaker[Session]) -> None:
    today = date(2026, 11, 25)
    first = seed_demo(sessions, today)
    assert first["created_clinic"] == 1 and first["appointments_added"] > 50
    with sessions() as s:
        assert s.scalar(select(func.count(Patient.id))) == 200
        phones = s.scalars(select(Patient.phone).where(Patient.phone.is_not(None))).all()
        assert len(phones) > 150 and all(normalize(p) == p for p in phones)
        assert s.scalar(select(func.count(Employee.id)).where(Employee.role == "chief_doctor")) == 1
        users = {u.login: u for u in s.scalars(select(User))}
        assert users["admin"].role == "admin"
        assert (users["reg1"].extension, users["reg2"].extension) == ("101", "102")
        assert verify_password(users["reg1"].password_hash, DEMO_PASSWORD)
        days = {a.starts_at.date() for a in s.scalars(select(Appointment))}
        assert days == {today, today + timedelta(days=1)}
        assert s.get(ClinicSettings, 1) is not None


def test_seed_is_idempotent_and_tops_up_a_new_day(sessions: sessionmaker[Session]) -> None:
    seed_demo(sessions, date(2026, 11, 25))
    again = seed_demo(sessions, date(2026, 11, 25))
    assert again == {"created_clinic": 0, "appointments_added": 0}
    later = seed_demo(sessions, date(2026, 11, 27))
    assert later["created_clinic"] == 0 and later["appointments_added"] > 0
    with sessions() as s:
        assert s.scalar(select(func.count(Patient.id))) == 200


def test_unique_extension_is_enforced_by_the_database(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.add(User(login="a", password_hash="x", extension="101"))
        s.add(User(login="b", password_hash="x", extension="101"))
        with pytest.raises(IntegrityError):
            s.commit()


def test_appointment_needs_an_existing_patient(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.add(Appointment(patient_id=999, doctor_id=999, starts_at=datetime(2026, 11, 25, 9)))
        with pytest.raises(IntegrityError):
            s.commit()
