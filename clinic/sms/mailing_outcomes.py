"""What became of a «Рассылка СМС»: its rows counted by the fate of their SMS, and the
operator's explicit «Отправить повторно» for rows whose result is unknown (a gateway 5xx or
a lost reply: the SMS may or may not have gone out, so it is never resent by itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinic.models import SmsMailing, SmsMailingRow, SmsMessage, User
from clinic.models.sms import (
    MAILING_SENDING,
    MAILING_SENT,
    MAILING_SIGNED,
    MSG_FAILED,
    MSG_QUEUED,
    MSG_SENDING,
    MSG_SENT,
    MSG_SKIPPED,
    MSG_UNKNOWN,
)
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import ledger


@dataclass(frozen=True)
class Outcome:
    """What became of a mailing's rows, for the list and the document's summary."""

    sent: int = 0  # accepted by sms.ru (delivered or not yet)
    failed: int = 0  # refused by sms.ru or expired
    unknown: int = 0  # the request's answer was lost: the SMS may or may not have gone out
    pending: int = 0  # still queued or in flight
    skipped: int = 0  # left out with a reason, or linked to a reminder sent before

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.unknown + self.pending + self.skipped


_OUTCOME_OF_STATE = {
    MSG_SENT: "sent",
    MSG_FAILED: "failed",
    MSG_UNKNOWN: "unknown",
    MSG_QUEUED: "pending",
    MSG_SENDING: "pending",
    MSG_SKIPPED: "failed",
}


def outcomes(session: Session, mailing_ids: list[int]) -> dict[int, Outcome]:
    """Per mailing: its rows counted by what their SMS became. A row linked to an SMS of
    another document (a reminder sent before) counts as skipped: this mailing sent nothing."""
    counts: dict[int, dict[str, int]] = {mid: {} for mid in mailing_ids}
    rows = session.execute(
        select(
            SmsMailingRow.mailing_id, SmsMessage.state, SmsMessage.mailing_id, func.count(SmsMailingRow.id)
        )
        .outerjoin(SmsMessage, SmsMessage.id == SmsMailingRow.message_id)
        .where(SmsMailingRow.mailing_id.in_(mailing_ids))
        .group_by(SmsMailingRow.mailing_id, SmsMessage.state, SmsMessage.mailing_id)
    ).all()
    for mailing_id, state, message_mailing, n in rows:
        kind = _OUTCOME_OF_STATE.get(state, "skipped") if message_mailing == mailing_id else "skipped"
        counts[mailing_id][kind] = counts[mailing_id].get(kind, 0) + n
    return {mid: Outcome(**c) for mid, c in counts.items()}


RESEND_WARNING = (
    "У этих строк ответ sms.ru не получен: СМС могли уже дойти до пациентов, и повторная "
    "отправка может прийти им дважды. Проверьте их в личном кабинете sms.ru."
)


def resend_unknown(
    session: Session, mailing: SmsMailing, user: User, *, confirmed: bool, now: datetime
) -> int:
    """The operator's explicit «Отправить повторно» for rows whose result is unknown: each
    gets a new SMS under a new key (the old row keeps its history). Refused without the
    confirmation, and for a signed document. Returns how many were queued."""
    if mailing.state == MAILING_SIGNED:
        raise ValidationError({"state": "Документ подписан и закрыт: повторная отправка невозможна"})
    if mailing.state != MAILING_SENT:
        raise ValidationError({"state": "Повторно отправить можно, когда отправка документа завершена"})
    unknown = [
        r for r in mailing.rows
        if r.message is not None and r.message.state == MSG_UNKNOWN and r.message.mailing_id == mailing.id
    ]
    if not unknown:
        raise ValidationError({"state": "Строк с неизвестным результатом нет"})
    if not confirmed:
        raise ValidationError({"resend_confirm": "Подтвердите повторную отправку: " + RESEND_WARNING})
    settings = read_settings(session)
    drafts = []
    for row in unknown:
        old = row.message
        assert old is not None
        # a new SMS on purpose, under the old key: a reminder stays recognisable as that visit's
        key = f"{old.idempotency_key}:resend:{old.id}"[:128]
        draft = ledger.Draft(
            phone=old.phone, text=old.text, key=key, source="mailing", user_id=user.id,
            patient_id=old.patient_id, appointment_id=old.appointment_id, mailing_id=mailing.id,
            expires_at=old.expires_at,
        )  # fmt: skip
        drafts.append((row, draft))
        old.note = f"Отправлено повторно оператором {user.full_name or user.login}"[:300]
    ids = ledger.queue_many(session, settings, [d for _row, d in drafts], now=now)
    for row, draft in drafts:
        row.message_id = ids[draft.key]
    mailing.state = MAILING_SENDING
    session.flush()
    return len(drafts)
