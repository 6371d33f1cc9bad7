"""Reminder rules («СМС → Правила напоминаний») and the reminders they make.

A rule says on which channel (SMS, the Mango robot, later our own robot), at what moment
(on booking; N hours/days before the visit; the evening before at a set time) and for which
appointments (doctor, service, department) a reminder goes. The worker turns a rule and an
appointment into one `ReminderJob` per visit time, unique on (rule, appointment, time): a
restarted worker finds the row and never makes a second reminder; a moved appointment has a
new time, so it gets a new reminder and its old one is stopped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clinic.models.base import Base, Timestamped, utcnow

MOMENT_ON_BOOKING = "on_booking"
MOMENT_BEFORE = "before"
MOMENT_EVENING = "evening"
MOMENTS = {
    MOMENT_ON_BOOKING: "При записи на приём",
    MOMENT_BEFORE: "За N часов / дней до приёма",
    MOMENT_EVENING: "Вечером накануне в заданное время",
}
UNIT_HOURS = "hours"
UNIT_DAYS = "days"
UNITS = {UNIT_HOURS: "часов", UNIT_DAYS: "дней"}

# reminder_jobs.state
JOB_PLANNED = "planned"  # due (or waiting for the end of quiet hours: not_before)
JOB_SENT = "sent"  # handed to its channel: an SMS ledger row, a Mango task
JOB_STOPPED = "stopped"  # confirmed, cancelled or moved before it went (or withdrawn from Mango)
JOB_SKIPPED = "skipped"  # a rule kept it back: too late, no consent, an empty template field...
JOB_FAILED = "failed"  # the channel refused it
JOB_STATES = {
    JOB_PLANNED: "Запланировано",
    JOB_SENT: "Отправлено",
    JOB_STOPPED: "Остановлено",
    JOB_SKIPPED: "Не отправлено",
    JOB_FAILED: "Ошибка",
}


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun after the number n: 1 час, 2 часа, 5 часов, 21 час."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


class ReminderRule(Timestamped, Base):
    __tablename__ = "reminder_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    channel: Mapped[str] = mapped_column(String(16))  # a key of clinic.reminders.channels
    moment: Mapped[str] = mapped_column(String(16), default=MOMENT_BEFORE)
    offset_value: Mapped[int] = mapped_column(Integer, default=24)  # moment "before"
    offset_unit: Mapped[str] = mapped_column(String(8), default=UNIT_HOURS)
    evening_time: Mapped[str] = mapped_column(String(5), default="18:00")  # moment "evening", HH:MM
    # the ttl: nothing goes later than this many minutes before the visit starts
    stop_before_min: Mapped[int] = mapped_column(Integer, default=60)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), nullable=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"), nullable=True)
    # «Подразделение»: the doctors' specialty ("" = every one); the clinic keeps no other
    # grouping of doctors
    department: Mapped[str] = mapped_column(String(200), default="")
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("sms_templates.id", ondelete="SET NULL"), nullable=True
    )
    # Since when the rule works: a visit whose reminder moment passed before this is not
    # reminded late (switching a rule on must not flood patients), unless it was booked later.
    active_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    doctor: Mapped[Employee | None] = relationship()  # noqa: F821
    service: Mapped[Service | None] = relationship()  # noqa: F821
    template: Mapped[SmsTemplate | None] = relationship()  # noqa: F821

    @property
    def moment_title(self) -> str:
        if self.moment == MOMENT_BEFORE:
            forms = ("день", "дня", "дней") if self.offset_unit == UNIT_DAYS else ("час", "часа", "часов")
            return f"За {self.offset_value} {plural(self.offset_value, *forms)} до приёма"
        if self.moment == MOMENT_EVENING:
            return f"Накануне в {self.evening_time}"
        return MOMENTS.get(self.moment, self.moment)


class ReminderJob(Base):
    """One reminder of one appointment's visit time by one rule."""

    __tablename__ = "reminder_jobs"
    __table_args__ = (
        UniqueConstraint("rule_id", "appointment_id", "starts_at", name="uq_reminder_jobs_visit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("reminder_rules.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))  # the visit time planned for
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=JOB_PLANNED, index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(String(300), default="")
    sms_message_id: Mapped[int | None] = mapped_column(ForeignKey("sms_messages.id"), nullable=True)
    robot_task_id: Mapped[int | None] = mapped_column(ForeignKey("robot_tasks.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    rule: Mapped[ReminderRule] = relationship()

    @property
    def state_title(self) -> str:
        return JOB_STATES.get(self.state, self.state)


from clinic.models.people import Employee  # noqa: E402  (relationship targets)
from clinic.models.schedule import Service  # noqa: E402
from clinic.models.sms import SmsTemplate  # noqa: E402
