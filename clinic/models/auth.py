"""Login throttling: failed attempts per source address and per login name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clinic.models.base import Base, utcnow


class LoginThrottle(Base):
    """One row per key: `addr:<ip>` or `login:<login, lower case>` (a login that does not
    exist gets a row too, so the answers never tell which logins exist)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
