"""SMS informing: templates, group mailings (documents) and the message ledger (the history).

The ledger (`sms_messages`) is written before any request to sms.ru: a message row exists,
committed, in state `queued` before it is ever picked up, and it is moved to `sending`
(committed) right before the HTTP request. A row found in `sending` after its lease expired
belonged to a worker that died mid-request, so its outcome is unknown: it is marked
`unknown` for the operator and never re-sent automatically.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clinic.models.base import Base, Timestamped

RECIPIENT_PATIENT = "patient"
RECIPIENT_DOCTOR = "doctor"
RECIPIENT_CHIEF = "chief_doctor"
RECIPIENT_TYPES = {RECIPIENT_PATIENT: "Пациент", RECIPIENT_DOCTOR: "Врач", RECIPIENT_CHIEF: "Гл.Врач"}

# Ledger states
MSG_QUEUED = "queued"  # written, waiting for its turn (or for the end of quiet hours)
MSG_SENDING = "sending"  # claimed; the request is (or was) in flight
MSG_SENT = "sent"  # sms.ru accepted it and gave an sms_id
MSG_FAILED = "failed"  # sms.ru refused it, or retries ran out before anything was sent
MSG_UNKNOWN = "unknown"  # the request may have gone out: for the operator, never re-sent
MSG_SKIPPED = "skipped"  # a rule stopped it (stop list, consent, expired reminder, duplicate)
MESSAGE_STATES = {
    MSG_QUEUED: "В очереди",
    MSG_SENDING: "Отправляется",
    MSG_SENT: "Отправлено",
    MSG_FAILED: "Ошибка",
    MSG_UNKNOWN: "Результат неизвестен",
    MSG_SKIPPED: "Не отправлено",
}

MAILING_DRAFT = "draft"
MAILING_SENDING = "sending"
MAILING_SENT = "sent"
MAILING_SIGNED = "signed"
MAILING_STATES = {
    MAILING_DRAFT: "Черновик",
    MAILING_SENDING: "Отправляется",
    MAILING_SENT: "Отправлено",
    MAILING_SIGNED: "Подписан",
}


class SmsTemplate(Timestamped, Base):
    """«Шаблоны для отправки СМС»."""

    __tablename__ = "sms_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    recipient_type: Mapped[str] = mapped_column(String(16), default=RECIPIENT_PATIENT)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text, default="")

    @property
    def recipient_title(self) -> str:
        return RECIPIENT_TYPES.get(self.recipient_type, self.recipient_type)


class SmsMailing(Timestamped, Base):
    """«Рассылка СМС»: a document with a selection period, a template and recipient rows."""

    __tablename__ = "sms_mailings"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    doc_date: Mapped[date] = mapped_column(Date)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    period_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("sms_templates.id"), nullable=True)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), nullable=True)
    cabinet_id: Mapped[int | None] = mapped_column(ForeignKey("cabinets.id"), nullable=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=MAILING_DRAFT)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    author: Mapped[User | None] = relationship()  # noqa: F821
    template: Mapped[SmsTemplate | None] = relationship()
    rows: Mapped[list[SmsMailingRow]] = relationship(
        back_populates="mailing", order_by="SmsMailingRow.id", cascade="all, delete-orphan"
    )

    @property
    def state_title(self) -> str:
        return MAILING_STATES.get(self.state, self.state)

    @property
    def editable(self) -> bool:
        return self.state == MAILING_DRAFT


class SmsMailingRow(Base):
    """One recipient of a mailing. `message_id` links the ledger row once it is queued."""

    __tablename__ = "sms_mailing_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("sms_mailings.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), nullable=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_messages.id"), nullable=True)
    # Why «Рассылка СМС» left this row out (cancelled visit, no consent, unfilled template
    # fields...), kept as it was at sending time; "" for a row that was sent.
    skip_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")

    mailing: Mapped[SmsMailing] = relationship(back_populates="rows")
    patient: Mapped[Patient | None] = relationship()  # noqa: F821
    appointment: Mapped[Appointment | None] = relationship()  # noqa: F821
    message: Mapped[SmsMessage | None] = relationship()


class SmsMessage(Base):
    """«История действий по смс»: one row per SMS, written before its request (the ledger)."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: a second attempt to queue the same message (double click, API retry, the same
    # reminder from another mailing) finds this row instead of creating another SMS.
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="single")  # single | mailing | api
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("sms_mailings.id"), nullable=True, index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), nullable=True)
    phone: Mapped[str] = mapped_column(String(16))  # digits as sent to sms.ru, 7XXXXXXXXXX
    text: Mapped[str] = mapped_column(Text)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default=MSG_QUEUED, index=True)
    note: Mapped[str] = mapped_column(String(300), default="")  # why skipped / deferred / unknown
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A reminder must not arrive after the visit: past this moment it is not sent, and the
    # ttl given to sms.ru never reaches beyond it.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sms_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    gateway_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gateway_answer: Mapped[str] = mapped_column(Text, default="")  # masked: no api_id
    delivery_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivery_text: Mapped[str] = mapped_column(String(200), default="")
    delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivery_final: Mapped[bool] = mapped_column(Boolean, default=False)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)

    user: Mapped[User | None] = relationship()  # noqa: F821
    mailing: Mapped[SmsMailing | None] = relationship(foreign_keys=[mailing_id])
    patient: Mapped[Patient | None] = relationship()  # noqa: F821

    @property
    def state_title(self) -> str:
        return MESSAGE_STATES.get(self.state, self.state)


class SmsStopEntry(Timestamped, Base):
    """Our own stop list: numbers that must never get an SMS from the clinic."""

    __tablename__ = "sms_stoplist"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)  # digits, 7XXXXXXXXXX
    note: Mapped[str] = mapped_column(String(200), default="")


class SmsPhoneFlag(Timestamped, Base):
    """A number sms.ru could not deliver to (shown on the patient card and in the dialog)."""

    __tablename__ = "sms_phone_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")


from clinic.models.people import Patient, User  # noqa: E402  (relationship targets)
from clinic.models.schedule import Appointment  # noqa: E402
