"""Keeping the database from growing forever: «Журнал обмена» rows older than the clinic's
retention (ClinicSettings.exchange_log_days, default 90) and stale login-throttle rows."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import ExchangeLogEntry, utcnow
from clinic.services import login_throttle
from clinic.services.settings import read_settings
from clinic.worker.jobs import Job, JobContext

log = logging.getLogger(__name__)

BATCH = 5000  # rows per transaction: short write locks, whatever the backlog


def purge_exchange_log(sessions: sessionmaker[Session], now: datetime) -> int:
    """Delete rows older than the retention, in batches; how many were deleted."""
    with sessions() as session:
        days = read_settings(session).exchange_log_days
    if not days or days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    deleted = 0
    while True:
        with transaction(sessions) as session:
            old = select(ExchangeLogEntry.id).where(ExchangeLogEntry.at < cutoff)
            ids = session.scalars(old.order_by(ExchangeLogEntry.id).limit(BATCH)).all()
            if not ids:
                return deleted
            session.execute(delete(ExchangeLogEntry).where(ExchangeLogEntry.id.in_(ids)))
            deleted += len(ids)


def housekeep(ctx: JobContext) -> None:
    now = utcnow()
    deleted = purge_exchange_log(ctx.sessions, now)
    if deleted:
        log.info("Журнал обмена: удалено записей старше срока хранения: %d", deleted)
    with transaction(ctx.sessions) as session:
        login_throttle.forget_old(session, now)


JOBS = (Job("housekeeping", 3600.0, housekeep),)
