"""Voice robot (Mango Office): external systems, server tasks and their journal, the
exchange log, and the Mango tasks our appointments were sent as."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clinic.models.base import Base, Timestamped, utcnow

SYSTEM_MANGO = "mango"
EXTERNAL_SYSTEM_KINDS = {SYSTEM_MANGO: "Mango Office"}

TASK_MANGO_EXPORT = "mango_export"
SERVER_TASK_KINDS = {TASK_MANGO_EXPORT: "Отправка сведений в Mango Office"}
SERVER_TASK_SERVICES = {TASK_MANGO_EXPORT: "TMangoOfficeThread"}

RUN_RUNNING = "running"
RUN_DONE = "done"
RUN_FAILED = "failed"

# robot_tasks.state: `pending` is written (and committed) before the request goes out, so a
# crash between the two leaves a row the next run settles instead of sending blindly.
ROBOT_PENDING = "pending"
ROBOT_SENT = "sent"
ROBOT_UNKNOWN = "unknown"  # sent, no answer (OutcomeUnknownError)
ROBOT_FAILED = "failed"
ROBOT_DELETED = "deleted"
ROBOT_STATES = {
    ROBOT_PENDING: "Отправляется",
    ROBOT_SENT: "Отправлено",
    ROBOT_UNKNOWN: "Ответ не получен",
    ROBOT_FAILED: "Ошибка",
    ROBOT_DELETED: "Удалено",
}


class ExternalSystem(Timestamped, Base):
    """«Внешние информационные системы»: one row per connected system (Mango Office)."""

    __tablename__ = "external_systems"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=SYSTEM_MANGO)
    name: Mapped[str] = mapped_column(String(200), default="Mango Office")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    api_key: Mapped[str] = mapped_column(String(200), default="")  # «Уникальный код»
    api_salt: Mapped[str] = mapped_column(String(200), default="")  # «Ключ авторизации»
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    base_url: Mapped[str] = mapped_column(String(300), default="https://app.mango-office.ru/vpbx/")
    # Custom-field names as configured in the campaign (Время, Дата, Услуга, Специалист,
    # Пациент_ФИО), as JSON {role: name}; their numeric ids cached after a lookup.
    field_names: Mapped[str] = mapped_column(Text, default="")
    field_ids: Mapped[str] = mapped_column(Text, default="")
    field_ids_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # UpdateStatus protection: a shared secret (query `token` or header X-Webhook-Token)
    # and/or an IP allow-list (addresses or networks, comma/space separated).
    webhook_secret: Mapped[str] = mapped_column(String(200), default="")
    webhook_ips: Mapped[str] = mapped_column(Text, default="")
    # Pull fallback: the digit pressed → status (1 confirm, 2 cancel), e.g. "1=1 2=2".
    digit_status: Mapped[str] = mapped_column(String(100), default="1=1 2=2")
    rate_per_s: Mapped[int] = mapped_column(Integer, default=5)  # task/add requests per second
    last_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_check_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_check_message: Mapped[str] = mapped_column(Text, default="")


class ServerTask(Timestamped, Base):
    """A scheduled server task («СерверКСАМУ»), e.g. «Отправка сведений в Mango Office»."""

    __tablename__ = "server_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default=TASK_MANGO_EXPORT)
    name: Mapped[str] = mapped_column(String(200))
    external_system_id: Mapped[int | None] = mapped_column(ForeignKey("external_systems.id"), nullable=True)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    run_at: Mapped[str] = mapped_column(String(5), default="09:00")  # daily, clinic local time
    last_run_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    run_requested: Mapped[bool] = mapped_column(Boolean, default=False)  # «Запустить сейчас»
    poll_results: Mapped[bool] = mapped_column(Boolean, default=True)  # campaign-report fallback

    external_system: Mapped[ExternalSystem | None] = relationship()

    @property
    def service_name(self) -> str:
        return SERVER_TASK_SERVICES.get(self.kind, self.kind)


class ServerTaskRun(Base):
    __tablename__ = "server_task_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("server_tasks.id"), index=True)
    target_date: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default=RUN_RUNNING)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    found: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


class JournalEntry(Base):
    """The server tasks' journal: «Дата события, Имя сервиса, ID, Состояние»."""

    __tablename__ = "server_task_journal"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    service: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)


class ExchangeLogEntry(Base):
    """«Журнал обмена»: every request to or from an external system, secrets masked."""

    __tablename__ = "exchange_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "out" (we call) / "in" (they call)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    elapsed_ms: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[str] = mapped_column(Text, default="")
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RobotTask(Base):
    """One Mango task. Appointments of one phone on one day share a task (5109)."""

    __tablename__ = "robot_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_system_id: Mapped[int] = mapped_column(ForeignKey("external_systems.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(64), unique=True)  # sent as «Доп. информация»
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # Mango's id
    state: Mapped[str] = mapped_column(String(16), default=ROBOT_PENDING, index=True)
    source: Mapped[str] = mapped_column(String(16), default="task")  # task / manual
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    items: Mapped[list[RobotTaskItem]] = relationship(
        back_populates="robot_task", order_by="RobotTaskItem.id"
    )

    @property
    def state_title(self) -> str:
        return ROBOT_STATES.get(self.state, self.state)


class RobotTaskItem(Base):
    """An appointment in a Mango task; unique, so an appointment is sent at most once."""

    __tablename__ = "robot_task_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    robot_task_id: Mapped[int] = mapped_column(ForeignKey("robot_tasks.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), unique=True)
    # the time that was sent: a callback about an appointment moved since is stale
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))

    robot_task: Mapped[RobotTask] = relationship(back_populates="items")
