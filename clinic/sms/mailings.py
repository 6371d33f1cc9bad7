"""«Рассылка СМС»: documents from draft to sent to signed.

Draft: period, template, filters; rows filled from appointments in the period or added by
hand; phones editable. «Рассылка СМС» writes one ledger row per recipient (the same
appointment reminder at most once across all documents) and the worker sends them in
batches of up to 100 with per-number texts. When nothing is left in flight the document is
«Отправлено»; «Подписать и закрыть» makes it read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from clinic.models import (
    Appointment,
    Cabinet,
    Employee,
    Patient,
    Service,
    SmsMailing,
    SmsMailingRow,
    SmsMessage,
    SmsTemplate,
    User,
)
from clinic.models.schedule import STATUS_CANCELLED
from clinic.models.sms import (
    MAILING_DRAFT,
    MAILING_SENDING,
    MAILING_SENT,
    MAILING_SIGNED,
    MSG_QUEUED,
    MSG_SENDING,
)
from clinic.phones import display
from clinic.services import ValidationError, as_text, parse_int
from clinic.services.settings import read_settings
from clinic.sms import ledger, rules, templating
from clinic.sms.sending import reminder_key
from clinic.smsru import SmsRuClient, batches

MAX_ROWS = 20000
MAX_PERIOD_DAYS = 62


def _date(value: object, label: str, errors: dict[str, str], key: str) -> date | None:
    text = as_text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[key] = f"{label}: дата в формате ГГГГ-ММ-ДД"
        return None


def _ref(
    session: Session, model: type, value: object, key: str, label: str, errors: dict[str, str]
) -> int | None:
    text = as_text(value)
    if not text:
        return None
    ident = parse_int(text)
    if ident is None or ident <= 0 or ident > 2**31 - 1 or session.get(model, ident) is None:
        errors[key] = f"{label} не найден"
        return None
    return ident


def load(session: Session, mailing_id: int) -> SmsMailing | None:
    return session.scalar(
        select(SmsMailing)
        .options(
            selectinload(SmsMailing.rows).joinedload(SmsMailingRow.message),
            selectinload(SmsMailing.rows).joinedload(SmsMailingRow.patient),
            selectinload(SmsMailing.rows).joinedload(SmsMailingRow.appointment),
            joinedload(SmsMailing.author),
            joinedload(SmsMailing.template),
        )
        .where(SmsMailing.id == mailing_id)
    )


def _require_draft(mailing: SmsMailing) -> None:
    if not mailing.editable:
        raise ValidationError({"state": f"Документ в состоянии «{mailing.state_title}»: изменения запрещены"})


def save_header(
    session: Session, mailing: SmsMailing | None, data: Mapping[str, object], user: User, today: date
) -> SmsMailing:
    errors: dict[str, str] = {}
    if mailing is not None:
        _require_draft(mailing)
    period_from = _date(data.get("period_from"), "Период с", errors, "period_from")
    period_to = _date(data.get("period_to"), "Период по", errors, "period_to")
    if period_from and period_to and period_to < period_from:
        errors["period_to"] = "Конец периода раньше начала"
    elif period_from and period_to and (period_to - period_from).days > MAX_PERIOD_DAYS:
        errors["period_to"] = f"Период отбора не длиннее {MAX_PERIOD_DAYS} дней"
    template_id = _ref(session, SmsTemplate, data.get("template_id"), "template_id", "Шаблон", errors)
    doctor_id = _ref(session, Employee, data.get("doctor_id"), "doctor_id", "Врач", errors)
    cabinet_id = _ref(session, Cabinet, data.get("cabinet_id"), "cabinet_id", "Кабинет", errors)
    service_id = _ref(session, Service, data.get("service_id"), "service_id", "Услуга", errors)
    if errors:
        raise ValidationError(errors)
    if mailing is None:
        number = (session.scalar(select(func.max(SmsMailing.number))) or 0) + 1
        mailing = SmsMailing(number=number, doc_date=today, author_id=user.id, state=MAILING_DRAFT)
        session.add(mailing)
    mailing.period_from, mailing.period_to = period_from, period_to
    mailing.template_id, mailing.doctor_id, mailing.cabinet_id, mailing.service_id = (
        template_id,
        doctor_id,
        cabinet_id,
        service_id,
    )
    session.flush()
    return mailing


def fill_from_appointments(session: Session, mailing: SmsMailing) -> int:
    """Add a row for every live appointment in the period (not yet in the document)."""
    _require_draft(mailing)
    if not mailing.period_from or not mailing.period_to:
        raise ValidationError({"period_from": "Укажите период отбора"})
    start = datetime.combine(mailing.period_from, datetime.min.time())
    end = datetime.combine(mailing.period_to + timedelta(days=1), datetime.min.time())
    query = (
        select(Appointment)
        .options(joinedload(Appointment.patient))
        .where(
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
            Appointment.status != STATUS_CANCELLED,
        )
        .order_by(Appointment.starts_at, Appointment.id)
    )
    if mailing.doctor_id:
        query = query.where(Appointment.doctor_id == mailing.doctor_id)
    if mailing.cabinet_id:
        query = query.where(Appointment.cabinet_id == mailing.cabinet_id)
    if mailing.service_id:
        query = query.where(Appointment.service_id == mailing.service_id)
    present = {row.appointment_id for row in mailing.rows if row.appointment_id}
    added = 0
    for appointment in session.scalars(query):
        if appointment.id in present:
            continue
        if len(mailing.rows) >= MAX_ROWS:
            raise ValidationError({"rows": f"В документе не более {MAX_ROWS} строк"})
        mailing.rows.append(
            SmsMailingRow(
                patient_id=appointment.patient_id,
                appointment_id=appointment.id,
                phone=display(appointment.patient.phone) if appointment.patient.phone else "",
            )
        )
        added += 1
    session.flush()
    return added


def add_row(session: Session, mailing: SmsMailing, data: Mapping[str, object]) -> SmsMailingRow:
    _require_draft(mailing)
    errors: dict[str, str] = {}
    patient_id = _ref(session, Patient, data.get("patient_id"), "patient_id", "Пациент", errors)
    phone = as_text(data.get("phone"))[:32]
    if errors:
        raise ValidationError(errors)
    patient = session.get(Patient, patient_id) if patient_id else None
    if not phone and patient is not None and patient.phone:
        phone = display(patient.phone)
    if patient is None and not phone:
        raise ValidationError({"phone": "Укажите пациента или номер телефона"})
    if phone:
        rules.sms_phone(phone)
    row = SmsMailingRow(patient_id=patient_id, phone=phone)
    mailing.rows.append(row)
    session.flush()
    return row


def update_rows(session: Session, mailing: SmsMailing, phones: Mapping[int, str], remove: set[int]) -> None:
    """Edited phones (`row id -> text`) and removed rows, from the document form."""
    _require_draft(mailing)
    errors: dict[str, str] = {}
    for row in list(mailing.rows):
        if row.id in remove:
            mailing.rows.remove(row)
            continue
        if row.id in phones:
            text = as_text(phones[row.id])[:32]
            if text:
                try:
                    rules.sms_phone(text)
                except ValidationError as exc:
                    errors[f"row_{row.id}"] = exc.errors["phone"]
            row.phone = text
    if errors:
        raise ValidationError(errors)
    session.flush()


def row_text(mailing: SmsMailing, row: SmsMailingRow, settings) -> str:  # type: ignore[no-untyped-def]
    if mailing.template is None:
        return ""
    return templating.render(
        mailing.template.body, templating.appointment_values(row.appointment, settings, row.patient)
    )


def _check_ready(mailing: SmsMailing) -> None:
    if mailing.template is None:
        raise ValidationError({"template_id": "Выберите шаблон"})
    if not mailing.rows:
        raise ValidationError({"rows": "В документе нет получателей"})
    bad = [str(i + 1) for i, row in enumerate(mailing.rows) if not row.phone.strip()]
    if bad:
        shown = ", ".join(bad[:10]) + (" …" if len(bad) > 10 else "")
        raise ValidationError(
            {"rows": f"Нет номера телефона в строках {shown}: введите номер или удалите строку"}
        )


def cost_preview(session: Session, mailing: SmsMailing, client: SmsRuClient) -> tuple[Decimal, int]:
    """Total price and SMS count through sms/cost, per-number texts, 100 numbers a request."""
    _check_ready(mailing)
    settings = read_settings(session)
    texts: dict[str, str] = {}
    for row in mailing.rows:
        texts.setdefault(rules.sms_phone(row.phone), row_text(mailing, row, settings))
    total, count = Decimal(0), 0
    for chunk in batches(list(texts)):
        result = client.cost_each({p: texts[p] for p in chunk})
        total += result.total_cost or Decimal(0)
        count += result.total_sms or 0
    return total, count


def start_sending(session: Session, mailing: SmsMailing, user: User, *, now: datetime) -> int:
    """Write the ledger rows of every recipient and hand the document to the worker."""
    _require_draft(mailing)
    _check_ready(mailing)
    settings = read_settings(session)
    if not settings.sms_api_key:
        from clinic.sms.gateway import NO_KEY

        raise ValidationError({"sms_api_key": NO_KEY})
    errors: dict[str, str] = {}
    drafts: list[tuple[SmsMailingRow, ledger.Draft]] = []
    for i, row in enumerate(mailing.rows, start=1):
        try:
            phone = rules.sms_phone(row.phone)
        except ValidationError as exc:
            errors[f"row_{row.id}"] = f"Строка {i}: {exc.errors['phone']}"
            continue
        text = row_text(mailing, row, settings)
        if problem := rules.text_problem(text):
            errors[f"row_{row.id}"] = f"Строка {i}: {problem}"
            continue
        appointment = row.appointment
        drafts.append(
            (
                row,
                ledger.Draft(
                    phone=phone,
                    text=text,
                    key=reminder_key(appointment) if appointment else f"mailing:{mailing.id}:row:{row.id}",
                    source="mailing",
                    user_id=user.id,
                    patient_id=row.patient_id,
                    appointment_id=row.appointment_id,
                    mailing_id=mailing.id,
                    expires_at=rules.visit_moment(settings, appointment.starts_at) if appointment else None,
                ),
            )
        )
    if errors:
        raise ValidationError(errors)
    ids = ledger.queue_many(session, settings, [d for _row, d in drafts], now=now)
    for row, draft in drafts:
        row.message_id = ids[draft.key]
    mailing.state = MAILING_SENDING
    session.flush()
    return len(drafts)


def finish_sent(session: Session, *, now: datetime) -> int:
    """Mailings with nothing left queued or in flight become «Отправлено»."""
    done = 0
    for mailing in session.scalars(select(SmsMailing).where(SmsMailing.state == MAILING_SENDING)):
        busy = session.scalar(
            select(func.count(SmsMailingRow.id))
            .join(SmsMessage, SmsMessage.id == SmsMailingRow.message_id)
            .where(SmsMailingRow.mailing_id == mailing.id, SmsMessage.state.in_((MSG_QUEUED, MSG_SENDING)))
        )
        if not busy:
            mailing.state, mailing.sent_at = MAILING_SENT, now
            done += 1
    return done


def sign(session: Session, mailing: SmsMailing, *, now: datetime) -> None:
    if mailing.state != MAILING_SENT:
        raise ValidationError({"state": "Подписать можно только отправленный документ"})
    mailing.state, mailing.signed_at = MAILING_SIGNED, now


def delete_draft(session: Session, mailing: SmsMailing) -> None:
    _require_draft(mailing)
    session.delete(mailing)


def list_mailings(session: Session) -> list[SmsMailing]:
    return list(
        session.scalars(
            select(SmsMailing)
            .options(joinedload(SmsMailing.author), joinedload(SmsMailing.template))
            .order_by(SmsMailing.number.desc())
        )
    )


def row_counts(session: Session, mailing_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(SmsMailingRow.mailing_id, func.count(SmsMailingRow.id))
        .where(SmsMailingRow.mailing_id.in_(mailing_ids))
        .group_by(SmsMailingRow.mailing_id)
    ).all()
    return {mid: n for mid, n in rows}
