"""Single sends («Отправить СМС» and POST /api/v1/sms): validate, write the ledger row,
then send it at once unless a rule deferred it (quiet hours: the worker sends it later)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from clinic.clock import clinic_now
from clinic.config import Config
from clinic.models import (
    Appointment,
    ClinicSettings,
    Employee,
    Patient,
    SmsMessage,
    SmsPhoneFlag,
    SmsTemplate,
)
from clinic.models.people import EMPLOYEE_CHIEF
from clinic.models.schedule import STATUS_CANCELLED
from clinic.models.sms import (
    MSG_QUEUED,
    MSG_SENDING,
    MSG_SENT,
    MSG_UNKNOWN,
    RECIPIENT_CHIEF,
    RECIPIENT_DOCTOR,
    RECIPIENT_PATIENT,
    RECIPIENT_TYPES,
)
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import gateway, ledger, rules, templating
from clinic.sms.templates import default_template

CONFIRMATION_CANCELLED = "cancelled"  # «Запись отменена» (the robot, the МИС or the registrar)
# a reminder in one of these states went out, may have, or will: never sent again unasked
LIVE_STATES = frozenset({MSG_QUEUED, MSG_SENDING, MSG_SENT, MSG_UNKNOWN})
MAX_VISITS_SHOWN = 20

_WHOM = {RECIPIENT_PATIENT: "пациента", RECIPIENT_DOCTOR: "врача", RECIPIENT_CHIEF: "главного врача"}


def no_default(recipient: str) -> str:
    return (
        f"Нет шаблона по умолчанию для {_WHOM[recipient]}: задайте его в «Шаблоны для отправки СМС» "
        "(«Абонент») или введите текст"
    )


@dataclass(frozen=True)
class Recipient:
    """Whom «Отправить СМС» writes to: the template's «Абонент» (Пациент, Врач, Гл.Врач)."""

    kind: str
    title: str  # «Пациент», «Врач», «Гл.Врач»
    name: str  # the person's full name
    phone: str


@dataclass(frozen=True)
class DialogData:
    text: str
    phone: str
    patient: Patient | None
    appointment: Appointment | None
    template: SmsTemplate | None
    flag: SmsPhoneFlag | None
    already_sent: SmsMessage | None  # the live reminder of this visit (sent, queued or unknown)
    problem: str | None  # e.g. no default template: the registrar types the text herself
    recipient: Recipient | None = None
    recipients: tuple[Recipient, ...] = ()  # the choice offered: patient, the doctor, the chief
    visits: tuple[Appointment, ...] = ()  # the patient's upcoming visits, to pick the one meant
    blockers: tuple[str, ...] = ()  # why nothing can be sent from this dialog now
    missing: tuple[str, ...] = ()  # template fields left empty in `text`

    @property
    def to_patient(self) -> bool:
        return self.recipient is None or self.recipient.kind == RECIPIENT_PATIENT

    @property
    def is_reminder(self) -> bool:
        """An SMS to the patient about one visit is that visit's reminder, whatever screen."""
        return self.to_patient and self.appointment is not None


def reminder_key(appointment: Appointment) -> str:
    """The same appointment reminder is never sent twice: one key per visit time."""
    return f"reminder:{appointment.id}:{appointment.starts_at:%Y%m%d%H%M}"


def cancelled_reason(appointment: Appointment) -> str | None:
    """Why no reminder may go for this visit: cancelled in the schedule or by the patient."""
    if appointment.status == STATUS_CANCELLED:
        return "Запись отменена (статус «Отменён»): напоминание не отправляется"
    if appointment.confirmation_status == CONFIRMATION_CANCELLED:
        return "Пациент отменил запись («Запись отменена»): напоминание не отправляется"
    return None


def reminders_of(session: Session, appointment_ids: list[int]) -> dict[int, list[SmsMessage]]:
    """Ledger rows that are reminders of these appointments (any visit time, newest first)."""
    found: dict[int, list[SmsMessage]] = {}
    for i in range(0, len(appointment_ids), 500):
        chunk = appointment_ids[i : i + 500]
        rows = session.scalars(
            select(SmsMessage)
            .where(SmsMessage.appointment_id.in_(chunk), SmsMessage.idempotency_key.like("reminder:%"))
            .order_by(SmsMessage.id.desc())
        )
        for row in rows:
            found.setdefault(row.appointment_id or 0, []).append(row)
    return found


def _of_this_time(rows: list[SmsMessage], appointment: Appointment) -> list[SmsMessage]:
    key = reminder_key(appointment)
    return [r for r in rows if r.idempotency_key == key or r.idempotency_key.startswith(key + ":")]


def live_among(rows: list[SmsMessage], appointment: Appointment) -> SmsMessage | None:
    """The newest reminder of this visit time that went out, may have, or is waiting to."""
    return next((r for r in _of_this_time(rows, appointment) if r.state in LIVE_STATES), None)


def fresh_reminder_key(rows: list[SmsMessage], appointment: Appointment) -> str:
    """The key of a new reminder when none is live: the plain one, or after a reminder that
    failed or was stopped, one tied to that row (two screens retrying at once make one SMS)."""
    dead = _of_this_time(rows, appointment)
    return f"{reminder_key(appointment)}:retry:{dead[0].id}" if dead else reminder_key(appointment)


def live_reminder(session: Session, appointment: Appointment) -> SmsMessage | None:
    return live_among(reminders_of(session, [appointment.id]).get(appointment.id, []), appointment)


def load_appointment(session: Session, appointment_id: int) -> Appointment | None:
    return session.scalar(
        select(Appointment)
        .options(
            joinedload(Appointment.patient),
            joinedload(Appointment.doctor),
            joinedload(Appointment.cabinet),
            joinedload(Appointment.service),
        )
        .where(Appointment.id == appointment_id)
    )


def upcoming_visits(session: Session, patient_id: int, now: datetime) -> tuple[Appointment, ...]:
    """The patient's visits from `now` (clinic wall clock) on, not cancelled, nearest first."""
    query = (
        select(Appointment)
        .options(
            joinedload(Appointment.doctor), joinedload(Appointment.cabinet), joinedload(Appointment.service)
        )
        .where(
            Appointment.patient_id == patient_id,
            Appointment.starts_at >= now,
            Appointment.status != STATUS_CANCELLED,
            Appointment.confirmation_status != CONFIRMATION_CANCELLED,
        )
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(MAX_VISITS_SHOWN)
    )
    return tuple(session.scalars(query).unique())


def recipients_for(
    session: Session, patient: Patient | None, appointment: Appointment | None
) -> tuple[Recipient, ...]:
    """Who can get an SMS from this dialog: the patient, the appointment's doctor and the
    chief doctor (each only if there is one)."""
    found: list[Recipient] = []
    if patient is not None:
        found.append(Recipient(RECIPIENT_PATIENT, "Пациент", patient.full_name, patient.phone or ""))
    if appointment is not None and appointment.doctor is not None:
        doctor = appointment.doctor
        found.append(Recipient(RECIPIENT_DOCTOR, "Врач", doctor.full_name, doctor.phone or ""))
    chief = session.scalar(
        select(Employee)
        .where(Employee.role == EMPLOYEE_CHIEF, Employee.is_active.is_(True))
        .order_by(Employee.id)
        .limit(1)
    )
    if chief is not None:
        found.append(Recipient(RECIPIENT_CHIEF, "Гл.Врач", chief.full_name, chief.phone or ""))
    return tuple(found)


def patient_blockers(
    session: Session, patient: Patient | None, appointment: Appointment | None, phone: str | None
) -> tuple[str, ...]:
    """Why an SMS to the patient cannot go: a cancelled or past visit, no consent, a stopped
    number."""
    found: list[str] = []
    if appointment is not None and (reason := cancelled_reason(appointment)):
        found.append(reason)
    elif appointment is not None and appointment.starts_at <= clinic_now(session):
        found.append("Приём уже начался: напоминание не отправляется")
    digits = ""
    with suppress(ValidationError):  # a bad number is the phone field's own error
        digits = rules.sms_phone(phone) if (phone or "").strip() else ""
    if reason := rules.stop_reason(session, digits, patient):
        found.append(reason)
    return tuple(found)


def _pick_appointment(
    session: Session, appointment_id: int | None, patient_id: int | None
) -> tuple[Appointment | None, Patient | None, bool]:
    """(appointment, patient, found): `appointment_id` 0 means «without a visit», None
    means «the patient's nearest visit» (picked later, once the visits are known)."""
    if appointment_id:
        appointment = load_appointment(session, appointment_id)
        if appointment is None or (patient_id and appointment.patient_id != patient_id):
            return None, None, False
        return appointment, appointment.patient, True
    patient = session.get(Patient, patient_id) if patient_id else None
    return None, patient, not (patient_id and patient is None)


def _template_text(
    session: Session, to: str, appointment: Appointment | None, patient: Patient | None, has_visits: bool
) -> tuple[SmsTemplate | None, str, tuple[str, ...], str | None]:
    """(template, text, missing field labels, problem) for the dialog."""
    template = default_template(session, to)
    if template is None:
        return None, "", (), no_default(to)
    if appointment is None and templating.needs_appointment(template.body):
        why = "выберите приём выше" if has_visits else "у пациента нет предстоящих приёмов"
        return (
            template,
            "",
            (),
            f"Шаблон «{template.name}» заполняется по записи на приём, а запись не выбрана ({why}): "
            "введите текст сообщения сами",
        )
    values = templating.appointment_values(appointment, read_settings(session), patient)
    missing = tuple(templating.missing_fields(template.body, values))
    return template, templating.render(template.body, values), missing, None


def dialog_data(
    session: Session,
    *,
    appointment_id: int | None = None,
    patient_id: int | None = None,
    to: str = RECIPIENT_PATIENT,
) -> DialogData | None:
    """What the dialog shows; None when the appointment, the patient or the recipient `to`
    is not there. Without an appointment the patient's nearest upcoming visit is meant
    (the others are offered); appointment_id=0 is a text about no visit."""
    appointment, patient, found = _pick_appointment(session, appointment_id, patient_id)
    if not found or to not in RECIPIENT_TYPES:
        return None
    visits = upcoming_visits(session, patient.id, clinic_now(session)) if patient else ()
    if appointment_id is None and visits:
        appointment = load_appointment(session, visits[0].id)
    choice = recipients_for(session, patient, appointment)
    recipient = next((r for r in choice if r.kind == to), None)
    if recipient is None and to != RECIPIENT_PATIENT:
        return None
    template, text, missing, problem = _template_text(session, to, appointment, patient, bool(visits))
    phone = recipient.phone if recipient else ""
    flag = (
        session.scalar(select(SmsPhoneFlag).where(SmsPhoneFlag.phone == phone.lstrip("+"))) if phone else None
    )
    to_patient = to == RECIPIENT_PATIENT
    return DialogData(
        text=text,
        phone=phone,
        patient=patient,
        appointment=appointment,
        template=template,
        flag=flag,
        already_sent=live_reminder(session, appointment) if appointment and to_patient else None,
        problem=problem,
        recipient=recipient,
        recipients=choice,
        visits=visits,
        blockers=patient_blockers(session, patient, appointment, phone) if to_patient else (),
        missing=missing,
    )


def send_single(
    factory: sessionmaker[Session],
    config: Config,
    *,
    phone: str | None,
    text: str | None,
    key: str,
    user_id: int | None = None,
    patient_id: int | None = None,
    appointment_id: int | None = None,
    template_id: int | None = None,
    source: str = "single",
    reminder: bool = False,
    repeat_of: int | None = None,
    clock: Callable[[], datetime] = ledger.utcnow,
) -> tuple[int, bool]:
    """Queue and (if due) send one SMS. Returns (message id, created). Raises ValidationError
    with Russian field messages; nothing is written then.

    A reminder (`reminder`, needs the appointment) is one SMS per visit time whichever
    screen sends it: while one is live its row comes back (created False), unless
    `repeat_of` names that very row (the registrar confirmed a repeat of what she saw)."""
    now = clock()
    with factory() as session, session.begin():
        settings = read_settings(session)
        if not settings.sms_api_key:
            raise ValidationError({"sms_api_key": gateway.NO_KEY})
        appointment = load_appointment(session, appointment_id) if appointment_id else None
        if appointment_id and appointment is None:
            raise ValidationError({"appointment_id": "Запись на приём не найдена"})
        patient = (
            appointment.patient if appointment else (session.get(Patient, patient_id) if patient_id else None)
        )
        if patient_id and patient is None:
            raise ValidationError({"patient_id": "Пациент не найден"})
        draft_key = key
        if reminder and appointment is not None:
            slot = _reminder_slot(session, appointment, repeat_of)
            if isinstance(slot, SmsMessage):
                return slot.id, False
            draft_key = slot
        if text is None or (not text.strip() and template_id is not None):
            text = _template_for_api(session, settings, template_id, appointment, patient)
        if not (phone or "").strip() and patient is not None and patient.phone:
            phone = patient.phone
        digits = _checked(phone, text)
        draft = ledger.Draft(
            phone=digits,
            text=text,
            key=draft_key,
            source=source,
            user_id=user_id,
            patient_id=patient.id if patient else None,
            appointment_id=appointment.id if appointment else None,
            expires_at=rules.visit_moment(settings, appointment.starts_at) if appointment else None,
        )
        row, created = ledger.queue(session, settings, draft, now=now)
        msg_id, state, due = row.id, row.state, row.not_before is None
        api_id = settings.sms_api_key
        client_settings = settings
    if created and state == MSG_QUEUED and due:
        client = gateway.make_client(config, client_settings)
        try:
            claimed = ledger.claim(factory, now=clock(), ids=[msg_id], limit=1)
            if claimed:
                ledger.send_claimed(factory, client, claimed, api_id=api_id, clock=clock)
        finally:
            client.close()
    return msg_id, created


def _reminder_slot(session: Session, appointment: Appointment, repeat_of: int | None) -> str | SmsMessage:
    """The key a new reminder of this visit goes under, or the live reminder to return."""
    if reason := cancelled_reason(appointment):
        raise ValidationError({"appointment_id": reason})
    rows = reminders_of(session, [appointment.id]).get(appointment.id, [])
    live = live_among(rows, appointment)
    if live is None:
        return fresh_reminder_key(rows, appointment)
    if repeat_of == live.id:
        return f"{reminder_key(appointment)}:repeat:{live.id}"
    return live


def _template_for_api(
    session: Session,
    settings: ClinicSettings,
    template_id: int | None,
    appointment: Appointment | None,
    patient: Patient | None,
) -> str:
    """The template's text for this appointment; refused if a field it uses stays empty."""
    template = session.get(SmsTemplate, template_id) if template_id else default_template(session)
    if template_id and template is None:
        raise ValidationError({"template_id": "Шаблон не найден"})
    if template is None:
        raise ValidationError({"text": no_default(RECIPIENT_PATIENT)})
    values = templating.appointment_values(appointment, settings, patient)
    if missing := templating.missing_fields(template.body, values):
        raise ValidationError(
            {"text": f"В шаблоне «{template.name}» не заполнены поля: {', '.join(missing)}"}
        )
    return templating.render(template.body, values)


def _checked(phone: str | None, text: str) -> str:
    """The phone as sms.ru wants it, after both the phone and the text are checked."""
    errors: dict[str, str] = {}
    digits = ""
    try:
        digits = rules.sms_phone(phone)
    except ValidationError as exc:
        errors.update(exc.errors)
    if problem := rules.text_problem(text):
        errors["text"] = problem
    if errors:
        raise ValidationError(errors)
    return digits
