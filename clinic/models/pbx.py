"""Revisions of the rendered Asterisk configuration, for audit and rollback."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinic.models.base import Base, Timestamped

REVISION_APPLIED = "applied"
REVISION_FAILED = "failed"  # check failed, previous revision restored
REVISION_REJECTED = "rejected"  # never reached Asterisk (render/validate error)


class ConfigRevision(Timestamped, Base):
    __tablename__ = "config_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    # {"pjsip.conf": "...", ...}: what was written (or would have been).
    files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
