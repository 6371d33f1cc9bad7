"""The ports through which the web side asks for PBX work.

`webhooks/` must not import `asterisk_conf/`; the composition root (`launcher/`) passes
implementations of these protocols into the Flask app factory: PbxApplier (re-apply after a
settings change) and PbxConsole («Администрирование → АТС»: templates, check, diff, apply,
history, rollback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ApplyResult:
    ok: bool
    message: str  # Russian, shown to the admin as is
    revision_id: int | None = None
    warning: str = ""  # applied, but something only takes effect later (Russian)
    output: str = ""  # what Asterisk answered (check and reload commands), secrets masked
    problems: tuple[Problem, ...] = ()


class PbxApplier(Protocol):
    """Render the configuration from the database and make Asterisk load it.

    `pending`: clinic settings (ClinicSettings field names: sip_domain, sip_port, rtp_start,
    rtp_end) to use instead of the stored ones. The settings page passes the values the admin
    entered and saves them only when the result is ok, so a change Asterisk rejects is never
    stored while Asterisk keeps the old one.
    """

    def __call__(
        self, author_id: int | None, *, pending: Mapping[str, object] | None = None
    ) -> ApplyResult: ...


# ---------------------------------------------------------------- the PBX console


@dataclass(frozen=True)
class Problem:
    """One reason a configuration is refused: where (rendered file or template, line) and why."""

    file: str  # "extensions.conf", "extensions_custom.conf.j2"; "" = not tied to a file
    line: int | None
    message: str  # Russian where ours, Asterisk's own words prefixed «Asterisk:»

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class TemplateInfo:
    name: str  # "extensions.conf.j2"
    title: str  # Russian, what the file is for
    is_override: bool  # the clinic's own version is in use (else the shipped one)
    is_include_point: bool  # a shipped context that belongs to the admin
    version: int  # 0 = no override; the optimistic check compares this
    text: str  # the text in use (override or shipped)
    shipped: str  # the shipped text, read-only
    updated_at: datetime | None = None
    author: str = ""


@dataclass(frozen=True)
class TemplateVersionInfo:
    name: str
    version: int
    action: str  # "saved" | "reset"
    comment: str
    author: str
    at: datetime


@dataclass(frozen=True)
class SaveResult:
    ok: bool
    message: str  # Russian
    version: int = 0  # the new version on success
    conflict: bool = False  # someone saved in between: «шаблон изменён другим пользователем»
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    problems: tuple[Problem, ...]
    output: str = ""  # Asterisk's own output of the parse check
    note: str = ""  # e.g. why Asterisk itself could not be asked
    files: Mapping[str, str] = field(default_factory=dict)  # rendered, secrets masked


@dataclass(frozen=True)
class FileDiff:
    name: str
    diff: str  # unified diff, secrets masked; "" = unchanged


@dataclass(frozen=True)
class RevisionInfo:
    id: int
    status: str  # clinic.models.pbx REVISION_*
    at: datetime
    author: str
    comment: str
    message: str
    files_hash: str
    can_rollback: bool  # the revision kept the overrides it was rendered with
    templates: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    output: str = ""


class PbxConsole(Protocol):
    """What «Администрирование → АТС» and `mis-telephony pbx templates` do. Texts in
    `pending` ({template name: text}) are used instead of the stored ones (check/diff of the
    editor's unsaved text); nothing here writes unless its name says so."""

    def templates(self) -> list[TemplateInfo]: ...

    def template(self, name: str) -> TemplateInfo | None: ...

    def variables(self) -> dict[str, str]: ...

    def versions(self, name: str) -> list[TemplateVersionInfo]: ...

    def save(self, name: str, text: str, base_version: int, author_id: int | None,
             comment: str = "") -> SaveResult: ...

    def reset(self, name: str, base_version: int, author_id: int | None, comment: str = "") -> SaveResult: ...

    def check(self, pending: Mapping[str, str] | None = None) -> CheckResult: ...

    def diff(self, pending: Mapping[str, str] | None = None) -> tuple[CheckResult, list[FileDiff]]: ...

    def apply(self, author_id: int | None, comment: str = "") -> ApplyResult: ...

    def history(self, limit: int = 100) -> list[RevisionInfo]: ...

    def revision(self, revision_id: int) -> RevisionInfo | None: ...

    def rollback(self, revision_id: int, author_id: int | None, comment: str = "") -> ApplyResult: ...
