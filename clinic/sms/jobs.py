"""Worker jobs: recover stale claims, send due messages, close finished mailings, poll statuses."""

from __future__ import annotations

import logging

from clinic.db import transaction
from clinic.services.settings import read_settings
from clinic.sms import delivery, gateway, ledger, mailings
from clinic.worker.jobs import Job, JobContext

log = logging.getLogger("clinic.sms")

CONCURRENCY = 8


def send_due(ctx: JobContext) -> None:
    now = ledger.utcnow()
    ledger.recover_stale(ctx.sessions, lease_s=ctx.config.sms_sending_lease_s, now=now)
    with ctx.sessions() as session:
        settings = read_settings(session)
        session.expunge_all()
    if settings.sms_api_key:
        client = gateway.make_client(ctx.config, settings)
        try:
            outcome = ledger.dispatch_due(
                ctx.sessions, client, api_id=settings.sms_api_key, concurrency=CONCURRENCY
            )
        finally:
            client.close()
        if outcome["requests"]:
            log.info("СМС: %s", outcome)
    with transaction(ctx.sessions) as session:
        mailings.finish_sent(session, now=ledger.utcnow())


def poll_delivery(ctx: JobContext) -> None:
    with ctx.sessions() as session:
        settings = read_settings(session)
        session.expunge_all()
    if not settings.sms_api_key:
        return
    client = gateway.make_client(ctx.config, settings)
    try:
        delivery.poll_statuses(ctx.sessions, client, now=ledger.utcnow())
    finally:
        client.close()


JOBS = (Job("sms_send", 2.0, send_due), Job("sms_delivery_poll", 60.0, poll_delivery))
