"""The clinic's own settings: one row, edited on «ЛПУ → Параметры»."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clinic.models.base import Base, Timestamped


class ClinicSettings(Timestamped, Base):
    __tablename__ = "clinic_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    # «Реквизиты»
    name: Mapped[str] = mapped_column(String(200), default="Клиника")
    full_name: Mapped[str] = mapped_column(String(400), default="")
    address: Mapped[str] = mapped_column(String(400), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    # «Сервис»: SMS gateway
    sms_api_key: Mapped[str] = mapped_column(String(128), default="")
    sms_sender: Mapped[str] = mapped_column(String(11), default="")
    # Quiet hours in the clinic's time zone: a send due inside [from, to) waits until `to`.
    # Equal values switch them off.
    sms_quiet_from: Mapped[int] = mapped_column(Integer, default=21, server_default="21")
    sms_quiet_to: Mapped[int] = mapped_column(Integer, default=9, server_default="9")
    # «Сервис»: IP-телефония
    sip_domain: Mapped[str] = mapped_column(String(253), default="127.0.0.1")
    sip_port: Mapped[int] = mapped_column(Integer, default=5060)
    rtp_start: Mapped[int] = mapped_column(Integer, default=10000)
    rtp_end: Mapped[int] = mapped_column(Integer, default=10999)
    # «IP-телефония → Транк»: the optional outbound trunk to the telephone network (a static
    # contact host:port, optional digest user/password). Empty host = no trunk.
    trunk_host: Mapped[str] = mapped_column(String(253), default="", server_default="")
    trunk_port: Mapped[int] = mapped_column(Integer, default=5060, server_default="5060")
    trunk_user: Mapped[str] = mapped_column(String(64), default="", server_default="")
    trunk_password: Mapped[str] = mapped_column(String(128), default="", server_default="")
    trunk_callerid: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # «Безопасность»
    lockout_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    lockout_attempts: Mapped[int] = mapped_column(Integer, default=10)
    strong_passwords: Mapped[bool] = mapped_column(Boolean, default=False)
    # «Журнал обмена» keeps this many days; the worker deletes older rows (0 = keep forever)
    exchange_log_days: Mapped[int] = mapped_column(Integer, default=90, server_default="90")
