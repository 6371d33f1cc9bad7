"""Revisions of the rendered Asterisk configuration, for audit and rollback, and the clinic's
own versions (overrides) of the shipped configuration templates."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinic.models.base import Base, Timestamped

REVISION_APPLIED = "applied"
REVISION_FAILED = "failed"  # check failed, previous revision restored
REVISION_REJECTED = "rejected"  # never reached Asterisk (render/validate error)

# What happened to a template (PbxTemplateVersion.action)
TEMPLATE_SAVED = "saved"
TEMPLATE_RESET = "reset"  # override removed: the shipped template is used again


class ConfigRevision(Timestamped, Base):
    __tablename__ = "config_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    # {"pjsip.conf": "...", ...}: what was written (or would have been), secrets masked.
    files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    # sha256 of the rendered files (unmasked, in FILES order): equal hashes, equal configs
    files_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # the clinic's overrides this render used ({template name: text}); None = before 0010.
    # «Откатить к этой версии» re-applies these with the current users and settings.
    templates: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    output: Mapped[str] = mapped_column(Text, default="", server_default="")  # Asterisk's answers


class PbxTemplate(Timestamped, Base):
    """The clinic's override of one shipped template (asterisk_conf/templates/<name>).
    No row, or text None («Сбросить к исходному»), = the shipped text is used. `version` grows
    on every save and reset (the row stays so it keeps counting): the optimistic check."""

    __tablename__ = "pbx_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class PbxTemplateVersion(Timestamped, Base):
    """Every save and reset of an override (who, when, why, the text)."""

    __tablename__ = "pbx_template_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # None after a reset
    comment: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
