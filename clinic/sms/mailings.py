"""«Рассылка СМС»: documents from draft to sent to signed.

Draft: period, template, filters; rows filled from appointments in the period or added by
hand; phones editable. «Рассылка СМС» writes one ledger row per recipient (the same
appointment reminder at most once across all documents) and the worker sends them in
batches of up to 100 with per-number texts. When nothing is left in flight the document is
«Отправлено»; «Подписать и закрыть» makes it read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from clinic.models import (
    Appointment,
    Cabinet,
    ClinicSettings,
    Employee,
    Patient,
    Service,
    SmsMailing,
    SmsMailingRow,
    SmsMessage,
    SmsPhoneFlag,
    SmsStopEntry,
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
    RECIPIENT_PATIENT,
    RECIPIENT_TYPES,
)
from clinic.phones import display
from clinic.services import ValidationError, as_text, parse_int
from clinic.services.settings import read_settings
from clinic.sms import ledger, rules, sending, templating
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


def _not_for_patients(template: SmsTemplate | None) -> str | None:
    if template is None or template.recipient_type == RECIPIENT_PATIENT:
        return None
    return (
        f"Шаблон «{template.name}» — для абонента «{RECIPIENT_TYPES[template.recipient_type]}»: "
        "рассылка идёт пациентам, выберите шаблон с абонентом «Пациент»"
    )


def _period(mailing: SmsMailing) -> tuple[datetime, datetime]:
    """The selection period as clinic wall-clock bounds [start, end)."""
    assert mailing.period_from is not None and mailing.period_to is not None
    start = datetime.combine(mailing.period_from, datetime.min.time())
    return start, datetime.combine(mailing.period_to + timedelta(days=1), datetime.min.time())


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
    if template_id and (problem := _not_for_patients(session.get(SmsTemplate, template_id))):
        errors["template_id"] = problem
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
    start, end = _period(mailing)
    query = (
        select(Appointment)
        .options(joinedload(Appointment.patient))
        .where(
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
            Appointment.status != STATUS_CANCELLED,
            Appointment.confirmation_status != sending.CONFIRMATION_CANCELLED,
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
    visit = _visit_for(session, mailing, patient)
    row = SmsMailingRow(patient_id=patient_id, phone=phone, appointment_id=visit)
    mailing.rows.append(row)
    session.flush()
    return row


def _visit_for(session: Session, mailing: SmsMailing, patient: Patient | None) -> int | None:
    """A hand-added patient's live visit in the period, when the template needs one and the
    document does not have it yet: the row then reads like a filled one."""
    # by id: the header saved in this same request may have just changed the template
    template = session.get(SmsTemplate, mailing.template_id) if mailing.template_id else None
    if patient is None or template is None or not templating.needs_appointment(template.body):
        return None
    if not mailing.period_from or not mailing.period_to:
        return None
    present = {row.appointment_id for row in mailing.rows if row.appointment_id}
    start, end = _period(mailing)
    visits = session.scalars(
        select(Appointment.id)
        .where(
            Appointment.patient_id == patient.id,
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
            Appointment.status != STATUS_CANCELLED,
            Appointment.confirmation_status != sending.CONFIRMATION_CANCELLED,
        )
        .order_by(Appointment.starts_at, Appointment.id)
    )
    return next((ident for ident in visits if ident not in present), None)


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


@dataclass(frozen=True)
class RowCheck:
    """What a row will send: the final text, or why it will not be sent."""

    text: str
    reason: str = ""  # Russian, shown on the row: this row is not sent
    earlier: SmsMessage | None = None  # this visit's reminder, already sent from another screen


@dataclass(frozen=True)
class SendSummary:
    queued: int  # new SMS written to the ledger
    skipped: int  # rows left out, each with its reason
    earlier: int  # rows whose reminder had already gone out


def _fill(mailing: SmsMailing, row: SmsMailingRow, settings: ClinicSettings) -> tuple[str, list[str]]:
    """The row's final text and the labels of the template fields left empty in it."""
    if mailing.template is None:
        return "", []
    body = mailing.template.body
    values = templating.appointment_values(row.appointment, settings, row.patient)
    return templating.render(body, values), templating.missing_fields(body, values)


def row_text(mailing: SmsMailing, row: SmsMailingRow, settings: ClinicSettings) -> str:
    return _fill(mailing, row, settings)[0]


def _digits(phone: str) -> str:
    try:
        return rules.sms_phone(phone) if phone.strip() else ""
    except ValidationError:
        return ""


@dataclass(frozen=True)
class _Facts:
    """What the rows' checks need from the database, read in a few statements."""

    stopped: set[str]
    flags: dict[str, str]
    reminders: dict[int, list[SmsMessage]]


def _facts(session: Session, mailing: SmsMailing) -> _Facts:
    phones = sorted({d for row in mailing.rows if (d := _digits(row.phone))})
    stopped: set[str] = set()
    flags: dict[str, str] = {}
    for i in range(0, len(phones), 500):
        chunk = phones[i : i + 500]
        stopped.update(session.scalars(select(SmsStopEntry.phone).where(SmsStopEntry.phone.in_(chunk))))
        flags.update(
            session.execute(
                select(SmsPhoneFlag.phone, SmsPhoneFlag.reason).where(SmsPhoneFlag.phone.in_(chunk))
            ).all()
        )
    visits = sorted({row.appointment_id for row in mailing.rows if row.appointment_id})
    return _Facts(stopped, flags, sending.reminders_of(session, visits))


def _reason(
    row: SmsMailingRow, missing: list[str], facts: _Facts, settings: ClinicSettings, now: datetime
) -> str:
    """Why this row must not be sent (first reason found), or ""."""
    appointment, patient, digits = row.appointment, row.patient, _digits(row.phone)
    if appointment is not None:
        if cancelled := sending.cancelled_reason(appointment):
            return cancelled
        if rules.visit_moment(settings, appointment.starts_at) <= now:
            return "Приём уже начался: напоминание не отправляется"
    if not digits:  # the others go; this one waits for a number typed in (or goes unsent)
        if row.phone.strip():
            return "Номер телефона указан неверно: исправьте его или удалите строку"
        return "Нет номера телефона: введите номер или удалите строку"
    if patient is not None and not patient.consent_sms:
        return "Пациент не дал согласия на СМС"
    if digits in facts.stopped:
        return "Номер в стоп-листе клиники"
    if digits in facts.flags:
        return f"На этот номер СМС не доставляются: {facts.flags[digits]}"
    if missing:
        lack = "" if appointment is not None else " (в строке нет записи на приём)"
        return f"Не заполнены поля шаблона: {', '.join(missing)}{lack}"
    return ""


def check_rows(session: Session, mailing: SmsMailing, *, now: datetime) -> dict[int, RowCheck]:
    """Each row's final text and, for the rows that will not go, the reason (shown to the
    operator before «Рассылка СМС», and applied by it). `now` is an aware UTC moment."""
    settings = read_settings(session)
    facts = _facts(session, mailing)
    checks: dict[int, RowCheck] = {}
    first_of: dict[tuple[str, str], int] = {}
    for number, row in enumerate(mailing.rows, start=1):
        text, missing = _fill(mailing, row, settings)
        reason = _reason(row, missing, facts, settings, now)
        digits = _digits(row.phone)
        if not reason and row.appointment is None and digits:
            twin = first_of.setdefault((digits, text), number)
            if twin != number:
                reason = f"Тот же номер и тот же текст, что в строке {twin}"
        earlier = None
        if row.appointment is not None:
            earlier = sending.live_among(facts.reminders.get(row.appointment.id, []), row.appointment)
        checks[row.id] = RowCheck(text, reason, earlier)
    return checks


def _check_ready(mailing: SmsMailing) -> None:
    if mailing.template is None:
        raise ValidationError({"template_id": "Выберите шаблон"})
    if not mailing.rows:
        raise ValidationError({"rows": "В документе нет получателей"})


def _sendable(mailing: SmsMailing, checks: dict[int, RowCheck]) -> list[SmsMailingRow]:
    """Rows that make a new SMS; refused when every row is left out (a document whose visits
    were all reminded already still goes on: its rows are linked to those SMS)."""
    rows = [r for r in mailing.rows if not checks[r.id].reason and checks[r.id].earlier is None]
    if not rows and all(checks[r.id].reason for r in mailing.rows):
        raise ValidationError(
            {"rows": "Отправлять нечего: ни одна строка не будет отправлена (причины — в таблице)"}
        )
    return rows


def cost_preview(
    session: Session, mailing: SmsMailing, client: SmsRuClient, *, now: datetime
) -> tuple[Decimal, int]:
    """Total price and SMS count through sms/cost of the rows that will be sent, per-number
    texts, 100 numbers a request."""
    _check_ready(mailing)
    checks = check_rows(session, mailing, now=now)
    texts: dict[str, str] = {}
    for row in _sendable(mailing, checks):
        texts.setdefault(rules.sms_phone(row.phone), checks[row.id].text)
    total, count = Decimal(0), 0
    for chunk in batches(list(texts)):
        result = client.cost_each({p: texts[p] for p in chunk})
        total += result.total_cost or Decimal(0)
        count += result.total_sms or 0
    return total, count


def _phone_errors(mailing: SmsMailing) -> dict[str, str]:
    errors: dict[str, str] = {}
    for i, row in enumerate(mailing.rows, start=1):
        if not row.phone.strip():
            continue  # no number: the row is left out with its reason, the others go
        try:
            rules.sms_phone(row.phone)
        except ValidationError as exc:
            errors[f"row_{row.id}"] = f"Строка {i}: {exc.errors['phone']}"
    return errors


def start_sending(session: Session, mailing: SmsMailing, user: User, *, now: datetime) -> SendSummary:
    """Write the ledger rows of every row that may be sent and hand the document to the
    worker. Rows with a reason keep it and get no SMS; a visit whose reminder already went
    out (from the dialog or another document) is linked to that SMS, not sent again."""
    _require_draft(mailing)
    _check_ready(mailing)
    settings = read_settings(session)
    if not settings.sms_api_key:
        from clinic.sms.gateway import NO_KEY

        raise ValidationError({"sms_api_key": NO_KEY})
    if errors := _phone_errors(mailing):
        raise ValidationError(errors)
    checks = check_rows(session, mailing, now=now)
    sendable = _sendable(mailing, checks)
    reminders = sending.reminders_of(session, [r.appointment_id for r in sendable if r.appointment_id])
    drafts = [(row, _draft(mailing, row, checks[row.id].text, user, settings, reminders)) for row in sendable]
    ids = ledger.queue_many(session, settings, [d for _row, d in drafts], now=now)
    for row, draft in drafts:
        row.message_id = ids[draft.key]
    skipped = earlier = 0
    for row in mailing.rows:
        check = checks[row.id]
        if check.reason:
            row.skip_reason, skipped = check.reason[:300], skipped + 1
        elif check.earlier is not None:
            row.message_id, earlier = check.earlier.id, earlier + 1
    mailing.state = MAILING_SENDING
    session.flush()
    return SendSummary(queued=len(drafts), skipped=skipped, earlier=earlier)


def _draft(
    mailing: SmsMailing,
    row: SmsMailingRow,
    text: str,
    user: User,
    settings: ClinicSettings,
    reminders: dict[int, list[SmsMessage]],
) -> ledger.Draft:
    appointment = row.appointment
    key = (
        sending.fresh_reminder_key(reminders.get(appointment.id, []), appointment)
        if appointment
        else f"mailing:{mailing.id}:row:{row.id}"
    )
    return ledger.Draft(
        phone=rules.sms_phone(row.phone),
        text=text,
        key=key,
        source="mailing",
        user_id=user.id,
        patient_id=row.patient_id,
        appointment_id=row.appointment_id,
        mailing_id=mailing.id,
        expires_at=rules.visit_moment(settings, appointment.starts_at) if appointment else None,
    )


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

