"""Delivery statuses: sms.ru callbacks (hooks listener) and polling sms/status (worker)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import SmsMessage
from clinic.models.sms import MSG_SENT
from clinic.services.settings import read_settings
from clinic.sms import ledger
from clinic.smsru import SmsRuClient, SmsRuError, batches
from clinic.smsru.codes import DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_TEXTS
from clinic.smsru.webhook import SmsStatusEvent, parse_form, verify

log = logging.getLogger("clinic.sms")

POLL_AFTER = timedelta(minutes=2)  # callbacks usually come first
POLL_WINDOW = timedelta(days=3)


def apply_status(
    session: Session, row: SmsMessage, code: int, at: datetime | None, cost: object = None
) -> bool:
    """Record a delivery code. A final status is never overwritten by a late pending one;
    repeating the same event changes nothing. Returns True if the row changed."""
    if row.delivery_final or (row.delivery_code == code and cost is None):
        return False
    final = code in DELIVERY_DELIVERED or code in DELIVERY_FAILED
    row.delivery_code, row.delivery_text = code, DELIVERY_TEXTS.get(code, f"Код {code}")
    row.delivery_at, row.delivery_final = at or datetime.now(UTC), final
    if cost is not None:
        row.cost = cost
    if code in ledger.UNDELIVERABLE_CODES:
        ledger.flag_phone(session, row.phone, code, row.delivery_text)
    return True


def handle_callback(factory: sessionmaker[Session], form: Mapping[str, str]) -> int:
    """Apply a callback POST if its hash matches the clinic's api_id. Returns rows changed.
    The caller answers "100" whatever happens, or sms.ru keeps retrying."""
    with factory() as session, session.begin():
        api_id = read_settings(session).sms_api_key
        if not api_id or not verify(api_id, form):
            log.warning("sms.ru callback: подпись не совпала, запрос отклонён")
            return 0
        changed = 0
        for event in parse_form(form):
            if not isinstance(event, SmsStatusEvent):
                continue
            at = datetime.fromtimestamp(event.at, UTC) if event.at else None
            for row in session.scalars(select(SmsMessage).where(SmsMessage.sms_id == event.sms_id)):
                changed += apply_status(session, row, event.code, at)
    return changed


def poll_statuses(factory: sessionmaker[Session], client: SmsRuClient, *, now: datetime) -> int:
    """Ask sms/status about sent messages whose delivery is still not final."""
    with factory() as session:
        pending = session.execute(
            select(SmsMessage.id, SmsMessage.sms_id).where(
                SmsMessage.state == MSG_SENT,
                SmsMessage.delivery_final.is_(False),
                SmsMessage.sms_id.is_not(None),
                SmsMessage.sent_at < now - POLL_AFTER,
                SmsMessage.sent_at > now - POLL_WINDOW,
            )
        ).all()
    changed = 0
    by_sms = {sms_id: msg_id for msg_id, sms_id in pending}
    for chunk in batches(list(by_sms)):
        try:
            result = client.status(chunk)
        except SmsRuError as exc:
            log.warning("sms.ru status: %s", exc)
            return changed
        with factory() as session, session.begin():
            for sms_id, status in result.messages.items():
                if not status.found or status.code is None or sms_id not in by_sms:
                    continue
                row = session.get(SmsMessage, by_sms[sms_id])
                if row is not None:
                    at = datetime.fromtimestamp(status.status_time, UTC) if status.status_time else now
                    changed += apply_status(session, row, status.code, at, status.cost)
    return changed
