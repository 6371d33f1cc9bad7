"""The clinic's own voice robot (calls through our Asterisk): its settings, its campaigns
(the next day's appointments grouped per phone), and one attempt row per phone per round.

Every state is explicit and written before the act it names: an attempt row (`placing`) is
committed before the call is originated, so an Asterisk or ari_app restart finds it and
never calls that phone a second time in the same round."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clinic.models.base import Base, utcnow

# campaign states
CAMPAIGN_RUNNING = "running"
CAMPAIGN_PAUSED = "paused"
CAMPAIGN_DONE = "done"
CAMPAIGN_STATES = {CAMPAIGN_RUNNING: "Идёт", CAMPAIGN_PAUSED: "Приостановлена", CAMPAIGN_DONE: "Завершена"}

# a phone of a campaign
PHONE_WAITING = "waiting"  # due at next_at (first call or a retry)
PHONE_CALLING = "calling"  # an attempt is live
PHONE_ANSWERED = "answered"  # the patient pressed 1 or 2 (per appointment results on the items)
PHONE_OPERATOR = "operator"  # the patient asked for a registrar (0)
PHONE_SMS = "sms"  # unreached after the retries: an SMS went, waiting for an answer until sms_deadline
PHONE_UNREACHED = "unreached"  # «Не дозвонились»: on the staff list for a callback
PHONE_SETTLED = "settled"  # nothing left to ask (confirmed/cancelled elsewhere, or called back)
PHONE_STATES = {
    PHONE_WAITING: "Ожидает звонка",
    PHONE_CALLING: "Звонок идёт",
    PHONE_ANSWERED: "Ответил",
    PHONE_OPERATOR: "Соединён с регистратором",
    PHONE_SMS: "Отправлено СМС",
    PHONE_UNREACHED: "Не дозвонились",
    PHONE_SETTLED: "Решено",
}
PHONE_OPEN = (PHONE_WAITING, PHONE_CALLING, PHONE_SMS)

# an attempt (one call)
ATTEMPT_PLACING = "placing"  # row committed, originate not yet answered by Asterisk
ATTEMPT_RINGING = "ringing"
ATTEMPT_TALKING = "talking"
ATTEMPT_DONE = "done"
ATTEMPT_LIVE = (ATTEMPT_PLACING, ATTEMPT_RINGING, ATTEMPT_TALKING)

# attempt outcomes
OUT_CONFIRMED = "confirmed"
OUT_CANCELLED = "cancelled"
OUT_OPERATOR = "operator"
OUT_BUSY = "busy"
OUT_NO_ANSWER = "no_answer"
OUT_NO_DTMF = "no_dtmf"  # answered, no digit in time (voicemail, or silence)
OUT_HANGUP = "hangup"  # answered, hung up before a digit
OUT_FAILED = "failed"  # Asterisk refused or the trunk failed
OUT_INTERRUPTED = "interrupted"  # ari_app or Asterisk restarted during the call
OUT_STALE = "stale"  # answered, but every appointment had changed since
OUTCOMES = {
    OUT_CONFIRMED: "Подтвердил",
    OUT_CANCELLED: "Отменил",
    OUT_OPERATOR: "Соединён с регистратором",
    OUT_BUSY: "Занято",
    OUT_NO_ANSWER: "Нет ответа",
    OUT_NO_DTMF: "Не нажал клавишу (автоответчик?)",
    OUT_HANGUP: "Положил трубку",
    OUT_FAILED: "Ошибка связи",
    OUT_INTERRUPTED: "Прерван перезапуском АТС",
    OUT_STALE: "Ответ устарел (запись изменена)",
}
# outcomes after which the phone is tried again (the patient was not reached)
UNREACHED_OUTCOMES = frozenset(
    {OUT_BUSY, OUT_NO_ANSWER, OUT_NO_DTMF, OUT_HANGUP, OUT_FAILED, OUT_INTERRUPTED}
)


class VoiceRobotSettings(Base):
    """«Голосовой робот (Asterisk)»: one row, edited by the admin."""

    __tablename__ = "voice_robot_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    trunk_channels: Mapped[int] = mapped_column(Integer, default=4)  # lines of the trunk in all
    robot_channels: Mapped[int] = mapped_column(Integer, default=2)  # at most trunk_channels - 1
    retries: Mapped[int] = mapped_column(Integer, default=2)  # K: calls after the first
    retry_minutes: Mapped[int] = mapped_column(Integer, default=30)  # M
    ring_seconds: Mapped[int] = mapped_column(Integer, default=30)
    dtmf_seconds: Mapped[int] = mapped_column(Integer, default=8)  # N: no digit → voicemail / silence
    hours_from: Mapped[str] = mapped_column(String(5), default="09:00")  # clinic wall clock
    hours_to: Mapped[str] = mapped_column(String(5), default="20:00")
    sms_wait_minutes: Mapped[int] = mapped_column(Integer, default=120)  # SMS → «Не дозвонились» after
    send_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    # a known caller with upcoming unanswered appointments hears them before the registrars
    inbound_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    greeting: Mapped[str] = mapped_column(String(300), default="Здравствуйте! Вас беспокоит клиника.")


class VoiceCampaign(Base):
    __tablename__ = "voice_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_date: Mapped[date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16), default=CAMPAIGN_RUNNING, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    phones: Mapped[list[VoicePhone]] = relationship(back_populates="campaign", order_by="VoicePhone.id")

    @property
    def state_title(self) -> str:
        return CAMPAIGN_STATES.get(self.state, self.state)


class VoicePhone(Base):
    """One phone of a campaign: all its appointments of the day are read in one call."""

    __tablename__ = "voice_phones"
    __table_args__ = (UniqueConstraint("campaign_id", "phone", name="uq_voice_phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("voice_campaigns.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=PHONE_WAITING, index=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # attempts placed so far (= rounds)
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    last_outcome: Mapped[str] = mapped_column(String(16), default="")
    sms_message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sms_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    called_back_uid: Mapped[str] = mapped_column(String(40), default="")  # «Перезвонить» (click-to-call)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    campaign: Mapped[VoiceCampaign] = relationship(back_populates="phones")
    items: Mapped[list[VoiceItem]] = relationship(back_populates="phone_row", order_by="VoiceItem.id")
    attempts: Mapped[list[VoiceAttempt]] = relationship(order_by="VoiceAttempt.id", viewonly=True)

    @property
    def state_title(self) -> str:
        return PHONE_STATES.get(self.state, self.state)


class VoiceItem(Base):
    """An appointment read in a phone's call, with the time that was read (a later move
    makes an answer stale) and what the patient answered about it."""

    __tablename__ = "voice_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_id: Mapped[int] = mapped_column(ForeignKey("voice_phones.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    result: Mapped[str] = mapped_column(String(16), default="")  # confirmed / cancelled / stale / repeated

    phone_row: Mapped[VoicePhone] = relationship(back_populates="items")


class VoiceAttempt(Base):
    """One call to one phone: round = the phone's call number (1, 2, …), unique per phone,
    so a round is never called twice whatever restarts."""

    __tablename__ = "voice_attempts"
    __table_args__ = (UniqueConstraint("phone_id", "round", name="uq_voice_attempt_round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_id: Mapped[int] = mapped_column(ForeignKey("voice_phones.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=ATTEMPT_PLACING, index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")
    digits: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str] = mapped_column(String(64), default="")
    prompt: Mapped[str] = mapped_column(String(16), default="")  # tts / generic (TTS failed)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")

    @property
    def outcome_title(self) -> str:
        return OUTCOMES.get(self.outcome, self.outcome)
