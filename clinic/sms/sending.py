"""Single sends («Отправить СМС» and POST /api/v1/sms): validate, write the ledger row,
then send it at once unless a rule deferred it (quiet hours: the worker sends it later)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from clinic.config import Config
from clinic.models import Appointment, Employee, Patient, SmsMessage, SmsPhoneFlag, SmsTemplate
from clinic.models.people import EMPLOYEE_CHIEF
from clinic.models.sms import (
    MSG_QUEUED,
    MSG_SENT,
    RECIPIENT_CHIEF,
    RECIPIENT_DOCTOR,
    RECIPIENT_PATIENT,
    RECIPIENT_TYPES,
)
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import gateway, ledger, rules, templating
from clinic.sms.templates import default_template

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
    already_sent: SmsMessage | None
    problem: str | None  # e.g. no default template
    recipient: Recipient | None = None
    recipients: tuple[Recipient, ...] = ()  # the choice offered: patient, the doctor, the chief

    @property
    def to_patient(self) -> bool:
        return self.recipient is None or self.recipient.kind == RECIPIENT_PATIENT


def reminder_key(appointment: Appointment) -> str:
    """The same appointment reminder is never sent twice: one key per visit time."""
    return f"reminder:{appointment.id}:{appointment.starts_at:%Y%m%d%H%M}"


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


def dialog_data(
    session: Session,
    *,
    appointment_id: int | None = None,
    patient_id: int | None = None,
    to: str = RECIPIENT_PATIENT,
) -> DialogData | None:
    """What the dialog shows; None when the appointment, the patient or the recipient `to`
    is not there."""
    appointment = load_appointment(session, appointment_id) if appointment_id else None
    if appointment_id and appointment is None:
        return None
    patient = (
        appointment.patient if appointment else (session.get(Patient, patient_id) if patient_id else None)
    )
    if patient_id and patient is None:
        return None
    choice = recipients_for(session, patient, appointment)
    recipient = next((r for r in choice if r.kind == to), None)
    if to not in RECIPIENT_TYPES or (recipient is None and to != RECIPIENT_PATIENT):
        return None
    settings = read_settings(session)
    template = default_template(session, to)
    text = (
        templating.render(template.body, templating.appointment_values(appointment, settings, patient))
        if template
        else ""
    )
    phone = recipient.phone if recipient else ""
    flag = (
        session.scalar(select(SmsPhoneFlag).where(SmsPhoneFlag.phone == phone.lstrip("+"))) if phone else None
    )
    already = None
    if appointment is not None and to == RECIPIENT_PATIENT:
        already = session.scalar(
            select(SmsMessage)
            .where(SmsMessage.appointment_id == appointment.id, SmsMessage.state == MSG_SENT)
            .order_by(SmsMessage.id.desc())
            .limit(1)
        )
    return DialogData(
        text,
        phone,
        patient,
        appointment,
        template,
        flag,
        already,
        None if template else no_default(to),
        recipient,
        choice,
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
    clock: Callable[[], datetime] = ledger.utcnow,
) -> tuple[int, bool]:
    """Queue and (if due) send one SMS. Returns (message id, created). Raises ValidationError
    with Russian field messages; nothing is written then."""
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
        if text is None or (not text.strip() and template_id is not None):
            template = session.get(SmsTemplate, template_id) if template_id else default_template(session)
            if template_id and template is None:
                raise ValidationError({"template_id": "Шаблон не найден"})
            if template is None:
                raise ValidationError({"text": no_default(RECIPIENT_PATIENT)})
            text = templating.render(
                template.body, templating.appointment_values(appointment, settings, patient)
            )
        if not (phone or "").strip() and patient is not None and patient.phone:
            phone = patient.phone
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
        draft = ledger.Draft(
            phone=digits,
            text=text,
            key=reminder_key(appointment) if (reminder and appointment) else key,
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
