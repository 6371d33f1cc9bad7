"""Patients' indexed phone keys (the last 10 digits): kept by the model on every write,
backfilled by migration 0005, used by the caller-ID lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from clinic.db import alembic_config, transaction
from clinic.models import Patient
from clinic.services.calls import find_patients_by_number, patient_brief_by_number

pytestmark = pytest.mark.db


def test_the_model_keeps_the_keys_in_step(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        p = Patient(last_name="Ключев", first_name="Иван", phone="+79161234567", phone_extra=None)
        s.add(p)
        s.flush()
        assert (p.phone_key, p.phone_extra_key) == ("9161234567", "")
        p.phone, p.phone_extra = None, "+74957654321"
        s.flush()
        pid = p.id
    with sessions() as s:
        stored = s.get(Patient, pid)
        assert stored is not None and (stored.phone_key, stored.phone_extra_key) == ("", "4957654321")
        # a caller ID in any notation finds him by the extra number, and no longer by the old one
        assert [x.id for x in find_patients_by_number(s, "8 (495) 765-43-21")] == [pid]
        assert patient_brief_by_number(s, "+7 495 765 43 21") == (pid, "Ключев Иван")
        assert find_patients_by_number(s, "89161234567") == []


def test_migration_0005_backfills_existing_patients(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO patients (last_name, first_name, patronymic, phone, phone_extra, consent_sms,"
                " consent_calls, notes, created_at, updated_at) VALUES"
                " ('Старый', 'Пётр', '', '+79031112233', '+7812555', 1, 1, '', '2026-01-01', '2026-01-01'),"
                " ('Безномерный', 'Олег', '', NULL, NULL, 1, 1, '', '2026-01-01', '2026-01-01')"
            )
        )
    command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT last_name, phone_key, phone_extra_key FROM patients ORDER BY id")
        ).all()
    engine.dispose()
    # a short extra number has no 10-digit key: it can only be found by name
    assert [tuple(r) for r in rows] == [("Старый", "9031112233", ""), ("Безномерный", "", "")]
