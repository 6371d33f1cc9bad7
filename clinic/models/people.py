"""People: system users, clinic employees and patients."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from clinic.models.base import Base, Timestamped
from clinic.phones import match_key

ROLE_ADMIN = "admin"
ROLE_REGISTRAR = "registrar"
USER_ROLES = {ROLE_ADMIN: "Администратор", ROLE_REGISTRAR: "Регистратор"}

EMPLOYEE_DOCTOR = "doctor"
EMPLOYEE_CHIEF = "chief_doctor"
EMPLOYEE_ROLES = {EMPLOYEE_DOCTOR: "Врач", EMPLOYEE_CHIEF: "Гл.Врач"}


class User(Timestamped, Base):
    """«Пользователи системы». SIP credentials are kept as the digest hash only."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_REGISTRAR)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Part of every session's stamp: logout, a lock or a password change bumps it, and every
    # session of the user ends on the server, whichever browser holds its cookie.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # «IP-телефония»: Доб. номер, ID SIP, Пароль SIP
    extension: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    sip_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    # MD5(sip_id:realm:password), what PJSIP's auth_type=md5 needs; the password itself is not stored.
    sip_md5_cred: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Which phone rings (clinic.softphone.RING_MODES) and the browser softphone's devices by
    # their labels: «Записывающее устройство», «Устройство воспроизведения» ("" = default).
    softphone_ring: Mapped[str] = mapped_column(String(8), default="sip", server_default="sip")
    mic_device: Mapped[str] = mapped_column(String(200), default="", server_default="")
    speaker_device: Mapped[str] = mapped_column(String(200), default="", server_default="")

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def has_telephony(self) -> bool:
        return bool(self.extension and self.sip_id and self.sip_md5_cred)


class Employee(Timestamped, Base):
    """Doctors and the chief doctor."""

    __tablename__ = "employees"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    patronymic: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16), default=EMPLOYEE_DOCTOR)
    specialty: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(16), nullable=True)  # E.164
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.patronymic) if p)

    @property
    def short_name(self) -> str:
        initials = "".join(f"{p[0]}." for p in (self.first_name, self.patronymic) if p)
        return f"{self.last_name} {initials}".strip()


class Patient(Timestamped, Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    last_name: Mapped[str] = mapped_column(String(100), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    patronymic: Mapped[str] = mapped_column(String(100), default="")
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # E.164; `phone` is the mobile used for SMS and calls.
    phone: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    phone_extra: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # the last 10 digits of each, kept in step by `_keep_keys`: an incoming caller ID (in
    # any notation) is matched by an indexed equality, not a LIKE '%…' scan of every patient
    phone_key: Mapped[str] = mapped_column(String(10), default="", server_default="", index=True)
    phone_extra_key: Mapped[str] = mapped_column(String(10), default="", server_default="", index=True)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str] = mapped_column(Text, default="")

    appointments: Mapped[list[Appointment]] = relationship(  # noqa: F821
        back_populates="patient", order_by="Appointment.starts_at"
    )

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.patronymic) if p)

    @validates("phone", "phone_extra")
    def _keep_keys(self, name: str, value: str | None) -> str | None:
        setattr(self, f"{name}_key", phone_key(value))
        return value


def phone_key(number: str | None) -> str:
    """The indexed match key of a stored number: its last 10 digits ("" when shorter)."""
    key = match_key(number or "")
    return key if len(key) == 10 else ""


class ApiToken(Timestamped, Base):
    """A bearer token for the МИС; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


from clinic.models.schedule import Appointment  # noqa: E402  (relationship target)
