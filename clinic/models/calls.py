"""Calls of the registrars' telephony: the call log, its legs and its recordings.

A `Call` is one conversation as the registrar sees it (click-to-call, an incoming call, a
call from the registrar's own phone taken under control). `CallLeg` rows are the Asterisk
channels that took part, `CallRecording` the «Запись» files (stored by Asterisk, played
through the ari_app control API).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clinic.models.base import Base, Timestamped, as_aware, utcnow

DIRECTION_OUTBOUND = "outbound"
DIRECTION_INBOUND = "inbound"
DIRECTIONS = {DIRECTION_OUTBOUND: "Исходящий", DIRECTION_INBOUND: "Входящий"}

# line states, as the «Прием по телефону» window names them
STATE_DIALING = "dialing"  # набор: the registrar's phone is ringing
STATE_CALLING = "calling"  # вызов: the other party is ringing
STATE_TALKING = "talking"  # разговор
STATE_HELD = "held"  # удержание
STATE_ENDED = "ended"
CALL_STATES = {
    STATE_DIALING: "Набор",
    STATE_CALLING: "Вызов",
    STATE_TALKING: "Разговор",
    STATE_HELD: "Удержание",
    STATE_ENDED: "Завершён",
}

RESULT_ANSWERED = "answered"
RESULT_MISSED = "missed"
RESULT_BUSY = "busy"
RESULT_FAILED = "failed"
# an outbound call the registrar ended (or his phone never took) before anyone answered
RESULT_CANCELLED = "cancelled"
CALL_RESULTS = {
    RESULT_ANSWERED: "Отвечен",
    RESULT_MISSED: "Пропущен",
    RESULT_BUSY: "Занято",
    RESULT_FAILED: "Ошибка",
    RESULT_CANCELLED: "Отменён",
}
# «Пропущен» is a call the clinic missed: an outbound call nobody picked up is «Нет ответа»
_OUTBOUND_TITLES = {RESULT_MISSED: "Нет ответа"}


def result_title(direction: str, result: str) -> str:
    """The result as the call log names it, which depends on who called whom."""
    if direction == DIRECTION_OUTBOUND and result in _OUTBOUND_TITLES:
        return _OUTBOUND_TITLES[result]
    return CALL_RESULTS.get(result, result)


class Call(Timestamped, Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # our id, also in channel/bridge ids
    direction: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), nullable=True)
    number: Mapped[str] = mapped_column(String(32), default="")  # E.164 or an extension
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    origin: Mapped[str] = mapped_column(String(16), default="ui")  # ui | phone | inbound
    state: Mapped[str] = mapped_column(String(16), default=STATE_DIALING)
    result: Mapped[str] = mapped_column(String(16), default="")  # "" while the call is active
    reason: Mapped[str] = mapped_column(String(200), default="")  # why it ended, Russian
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # set when a missed call was called back, so it leaves the missed list
    callback_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True)

    legs: Mapped[list[CallLeg]] = relationship(back_populates="call", order_by="CallLeg.id")
    recordings: Mapped[list[CallRecording]] = relationship(back_populates="call", order_by="CallRecording.id")

    @property
    def duration_s(self) -> int | None:
        """Seconds talked (rounded), or None for a call nobody answered or still going."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0, round((as_aware(self.ended_at) - as_aware(self.answered_at)).total_seconds()))

    @property
    def is_active(self) -> bool:
        return self.state != STATE_ENDED


class CallLeg(Timestamped, Base):
    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))  # registrar | remote | third | transfer
    endpoint: Mapped[str] = mapped_column(String(128), default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cause: Mapped[int | None] = mapped_column(Integer, nullable=True)

    call: Mapped[Call] = relationship(back_populates="legs")


class CallRecording(Timestamped, Base):
    __tablename__ = "call_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)  # Asterisk's stored recording name
    format: Mapped[str] = mapped_column(String(8), default="wav")
    state: Mapped[str] = mapped_column(String(16), default="recording")  # recording | done | failed
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)

    call: Mapped[Call] = relationship(back_populates="recordings")
