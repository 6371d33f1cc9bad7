"""«Журнал обмена» keeps ClinicSettings.exchange_log_days (default 90) days (issue 12, point 7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import ExchangeLogEntry, utcnow
from clinic.services.settings import get_settings
from clinic.worker import housekeeping


def _log(sessions: sessionmaker[Session], ages_days: list[float]) -> None:
    now = utcnow()
    with transaction(sessions) as session:
        for age in ages_days:
            session.add(ExchangeLogEntry(at=now - timedelta(days=age), direction="in", owner=f"age {age}"))


def _owners(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(ExchangeLogEntry.owner)).all())


def test_rows_past_the_default_90_days_are_deleted(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "BATCH", 2)  # several batches
    _log(sessions, [1, 89.9, 90.1, 120, 400, 1000])
    assert housekeeping.purge_exchange_log(sessions, utcnow()) == 4
    assert _owners(sessions) == ["age 1", "age 89.9"]


def test_the_clinic_sets_the_retention(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        get_settings(session).exchange_log_days = 7
    _log(sessions, [1, 8])
    assert housekeeping.purge_exchange_log(sessions, utcnow()) == 1
    with transaction(sessions) as session:
        get_settings(session).exchange_log_days = 0  # keep forever
    _log(sessions, [5000])
    assert housekeeping.purge_exchange_log(sessions, utcnow()) == 0
    assert _owners(sessions) == ["age 1", "age 5000"]
