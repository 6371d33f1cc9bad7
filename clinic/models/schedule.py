"""The schedule: cabinets, services and appointments («талоны»)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clinic.models.base import Base, Timestamped

STATUS_BOOKED = "booked"
STATUS_ARRIVED = "arrived"
STATUS_DONE = "done"
STATUS_NO_SHOW = "no_show"
STATUS_CANCELLED = "cancelled"
APPOINTMENT_STATUSES = {
    STATUS_BOOKED: "Записан",
    STATUS_ARRIVED: "Пришёл",
    STATUS_DONE: "Принят",
    STATUS_NO_SHOW: "Не явился",
    STATUS_CANCELLED: "Отменён",
}

CONFIRMATION_STATUSES = {"": "", "confirmed": "Запись подтверждена", "cancelled": "Запись отменена"}


class Cabinet(Timestamped, Base):
    __tablename__ = "cabinets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def title(self) -> str:
        return f"Каб. {self.number}" + (f" {self.name}" if self.name else "")


class Service(Timestamped, Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    duration_min: Mapped[int] = mapped_column(Integer, default=20)
    price: Mapped[float] = mapped_column(Numeric(10, 2), default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Appointment(Timestamped, Base):
    """One booking. `starts_at` is the clinic's local wall-clock time (naive)."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("employees.id"), index=True)
    cabinet_id: Mapped[int | None] = mapped_column(ForeignKey("cabinets.id"), nullable=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"), nullable=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=False), index=True)
    duration_min: Mapped[int] = mapped_column(Integer, default=20)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_BOOKED)
    extra_info: Mapped[str] = mapped_column(Text, default="")  # «Доп. информация»
    cancel_reason: Mapped[str] = mapped_column(String(300), default="")
    confirmation_status: Mapped[str] = mapped_column(String(16), default="")
    confirmation_source: Mapped[str] = mapped_column(String(32), default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    patient: Mapped[Patient] = relationship(back_populates="appointments")  # noqa: F821
    doctor: Mapped[Employee] = relationship()  # noqa: F821
    cabinet: Mapped[Cabinet | None] = relationship()
    service: Mapped[Service | None] = relationship()

    @property
    def status_title(self) -> str:
        return APPOINTMENT_STATUSES.get(self.status, self.status)


from clinic.models.people import Employee, Patient  # noqa: E402  (relationship targets)
