"""The PBX console (clinic.pbx_port.PbxConsole): the clinic's template overrides, the check
(render with StrictUndefined → our validator → a throw-away Asterisk), the diff against the
running files, apply and rollback through apply.apply_from_db, and the revision history.

Shipped templates stay read-only in the package; an override is a row of pbx_templates and
every save or reset a row of pbx_template_versions. «Откатить к этой версии» re-applies the
overrides an earlier revision was rendered with (with today's users and settings: a rollback
of the dialplan must not bring back a registrar who has left) and, once applied, makes them
the stored overrides again.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf import apply, dryrun
from asterisk_conf.render import INCLUDE_POINTS, TEMPLATE_DIR, TEMPLATES, VARIABLES
from clinic.config import Config
from clinic.db import transaction
from clinic.models import ConfigRevision, User
from clinic.models.pbx import TEMPLATE_RESET, TEMPLATE_SAVED, PbxTemplate, PbxTemplateVersion
from clinic.pbx_port import (
    ApplyResult,
    CheckResult,
    FileDiff,
    PbxConsole,
    Problem,
    RevisionInfo,
    SaveResult,
    TemplateInfo,
    TemplateVersionInfo,
)

# A template is a text file of a few KiB; 256 KiB leaves room for a big dialplan and stops a
# paste of the wrong file (or 5 MB of garbage) before it is rendered, stored or shown.
MAX_TEMPLATE_BYTES = 256 * 1024
CONFLICT = ("Шаблон изменён другим пользователем: ваш текст не сохранён и остался в форме; откройте "
            "шаблон заново, чтобы увидеть его версию, и перенесите свои правки")
TITLES = {
    "modules.conf.j2": "Модули Asterisk (modules.conf)",
    "logger.conf.j2": "Журналы Asterisk (logger.conf)",
    "http.conf.j2": "HTTP-сервер: ARI и websocket софтфона (http.conf)",
    "ari.conf.j2": "Пользователь ARI (ari.conf)",
    "manager.conf.j2": "AMI (manager.conf)",
    "rtp.conf.j2": "Порты RTP (rtp.conf)",
    "musiconhold.conf.j2": "Музыка на удержании (musiconhold.conf)",
    "pjsip.conf.j2": "Абоненты, транк, транспорты SIP (pjsip.conf)",
    "extensions.conf.j2": "План набора (extensions.conf)",
    "extensions_custom.conf.j2": "Свой контекст [clinic-custom] (включается в extensions.conf)",
    "pjsip_custom.conf.j2": "Свои объекты PJSIP (включаются в pjsip.conf)",
}
_WHERE = re.compile(r"^([\w.-]+\.conf(?:\.j2)?):(\d+): (.*)$", re.S)
_TEMPLATE_AT = re.compile(r"шаблона ([\w.-]+\.j2), строка (\d+)|\(([\w.-]+\.j2), строка (\d+)\)")


def to_problem(message: str) -> Problem:
    """Our messages carry «file:line: reason» or «шаблона X.j2, строка N»: split them."""
    m = _WHERE.match(message)
    if m:
        return Problem(m.group(1), int(m.group(2)), m.group(3))
    m2 = _TEMPLATE_AT.search(message)
    if m2:
        name, line = (m2.group(1), m2.group(2)) if m2.group(1) else (m2.group(3), m2.group(4))
        return Problem(name, int(line), message)
    fname = message.split(":", 1)[0]
    if fname.endswith(".conf") and " " not in fname:
        return Problem(fname, None, message.split(":", 1)[1].strip())
    return Problem("", None, message)


def _mask(text: str, secrets: tuple[str, ...]) -> str:
    return apply.mask_secrets(text, secrets)


@dataclass
class Console(PbxConsole):
    config: Config
    sessions: sessionmaker[Session]

    # ------------------------------------------------------------ templates
    def _rows(self, session: Session) -> dict[str, PbxTemplate]:
        return {row.name: row for row in session.scalars(select(PbxTemplate))}

    def _author(self, session: Session, user_id: int | None) -> str:
        if user_id is None:
            return "система"
        user = session.get(User, user_id)
        return (user.full_name or user.login) if user is not None else f"#{user_id}"

    def _info(self, session: Session, name: str, row: PbxTemplate | None) -> TemplateInfo:
        shipped = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
        own = row is not None and row.text is not None
        return TemplateInfo(
            name=name,
            title=TITLES.get(name, name),
            is_override=own,
            is_include_point=name in INCLUDE_POINTS,
            version=row.version if row is not None else 0,
            text=row.text if row is not None and row.text is not None else shipped,
            shipped=shipped,
            updated_at=row.updated_at if row is not None else None,
            author=self._author(session, row.author_id) if row is not None else "",
        )

    def templates(self) -> list[TemplateInfo]:
        with self.sessions() as session:
            rows = self._rows(session)
            return [self._info(session, name, rows.get(name)) for name in TEMPLATES]

    def template(self, name: str) -> TemplateInfo | None:
        if name not in TEMPLATES:
            return None
        with self.sessions() as session:
            return self._info(session, name, self._rows(session).get(name))

    def variables(self) -> dict[str, str]:
        return dict(VARIABLES)

    def versions(self, name: str) -> list[TemplateVersionInfo]:
        with self.sessions() as session:
            rows = session.scalars(select(PbxTemplateVersion).where(PbxTemplateVersion.name == name)
                                   .order_by(PbxTemplateVersion.id.desc())).all()
            return [TemplateVersionInfo(r.name, r.version, r.action, r.comment,
                                        self._author(session, r.author_id), r.created_at) for r in rows]

    def _store(self, name: str, text: str | None, base_version: int, author_id: int | None,
               comment: str) -> SaveResult:
        """Conditional write: only if the stored version is still `base_version`."""
        action = TEMPLATE_SAVED if text is not None else TEMPLATE_RESET
        try:
            with transaction(self.sessions) as session:
                if base_version == 0:
                    taken = session.scalars(select(PbxTemplate).where(PbxTemplate.name == name)).first()
                    if taken is not None:
                        return SaveResult(False, CONFLICT, conflict=True)
                    session.add(PbxTemplate(name=name, text=text, version=1, author_id=author_id))
                    session.flush()  # a concurrent first save fails here on the unique name
                    new_version = 1
                else:
                    new_version = base_version + 1
                    done = session.execute(
                        update(PbxTemplate)
                        .where(PbxTemplate.name == name, PbxTemplate.version == base_version)
                        .values(text=text, version=new_version, author_id=author_id)
                    )
                    if done.rowcount != 1:  # type: ignore[attr-defined]
                        return SaveResult(False, CONFLICT, conflict=True)
                session.add(PbxTemplateVersion(name=name, version=new_version, action=action, text=text,
                                               comment=comment, author_id=author_id))
        except IntegrityError:
            return SaveResult(False, CONFLICT, conflict=True)
        what = "сохранён" if text is not None else "сброшен к исходному"
        return SaveResult(True, f"Шаблон {name} {what} (версия {new_version}). Чтобы Asterisk начал "
                                "работать по нему, нажмите «Применить».", new_version)

    def _current_version(self, name: str) -> int:
        with self.sessions() as session:
            row = session.scalars(select(PbxTemplate).where(PbxTemplate.name == name)).first()
            return row.version if row is not None else 0

    def save(self, name: str, text: str, base_version: int, author_id: int | None,
             comment: str = "") -> SaveResult:
        if name not in TEMPLATES:
            return SaveResult(False, f"Неизвестный шаблон «{name}»")
        size = len(text.encode("utf-8"))
        if size > MAX_TEMPLATE_BYTES:
            return SaveResult(False, f"Шаблон слишком большой: {size // 1024} КБ, допустимо не больше "
                                     f"{MAX_TEMPLATE_BYTES // 1024} КБ. Ничего не сохранено.")
        text = text.replace("\r\n", "\n")
        if self._current_version(name) != base_version:
            return SaveResult(False, CONFLICT, conflict=True)
        checked = self.check({name: text})
        if not checked.ok:
            return SaveResult(False, "Шаблон не сохранён: конфигурация с ним не проходит проверку.",
                              problems=checked.problems)
        return self._store(name, text, base_version, author_id, comment)

    def reset(self, name: str, base_version: int, author_id: int | None, comment: str = "") -> SaveResult:
        if name not in TEMPLATES:
            return SaveResult(False, f"Неизвестный шаблон «{name}»")
        if self._current_version(name) != base_version:
            return SaveResult(False, CONFLICT, conflict=True)
        return self._store(name, None, base_version, author_id, comment or "сброс к исходному")

    # ------------------------------------------------------------ check / diff
    def _overrides(self, pending: Mapping[str, str] | None) -> dict[str, str]:
        out = apply.stored_overrides(self.sessions)
        for name, text in (pending or {}).items():
            if name not in TEMPLATES:
                raise ValueError(f"unknown template {name!r}")
            out[name] = text.replace("\r\n", "\n")
        return out

    def _check(
        self, pending: Mapping[str, str] | None
    ) -> tuple[CheckResult, dict[str, str], tuple[str, ...]]:
        """The result, the raw rendered files and the secrets to mask in anything shown."""
        for name, text in (pending or {}).items():
            size = len(text.encode("utf-8"))
            if size > MAX_TEMPLATE_BYTES:
                msg = (f"Шаблон слишком большой: {size // 1024} КБ, допустимо не больше "
                       f"{MAX_TEMPLATE_BYTES // 1024} КБ")
                return CheckResult(False, (Problem(name, None, msg),)), {}, ()
        prep = apply.prepare(self.config, self.sessions, overrides=self._overrides(pending))
        secrets = prep.inp.secrets if prep.inp is not None else (self.config.pbx.ari_password,
                                                                 self.config.pbx.ami_secret)
        if prep.files is None or prep.problems:
            masked = {k: _mask(v, secrets) for k, v in (prep.files or {}).items()}
            problems = tuple(to_problem(_mask(p, secrets)) for p in prep.problems)
            return CheckResult(False, problems, files=masked), prep.files or {}, secrets
        dry = dryrun.check(self.config.pbx, prep.files)
        masked = {k: _mask(v, secrets) for k, v in prep.files.items()}
        note = dry.note and f"Проверка самим Asterisk не выполнена: {dry.note}"
        return (CheckResult(not dry.problems, tuple(dry.problems), _mask(dry.output, secrets), note, masked),
                prep.files, secrets)

    def check(self, pending: Mapping[str, str] | None = None) -> CheckResult:
        return self._check(pending)[0]


    def diff(self, pending: Mapping[str, str] | None = None) -> tuple[CheckResult, list[FileDiff]]:
        result, files, secrets = self._check(pending)
        if not files:
            return result, []
        running = apply.snapshot(self.config.pbx.conf_dir, tuple(files))
        out: list[FileDiff] = []
        for name, new in files.items():
            old = _mask(running.get(name) or "", secrets).splitlines(keepends=True)
            lines = difflib.unified_diff(old, _mask(new, secrets).splitlines(keepends=True),
                                         f"{name} (работает сейчас)", f"{name} (новый)")
            out.append(FileDiff(name, "".join(lines)))
        return result, out

    # ------------------------------------------------------------ apply / history / rollback
    def apply(self, author_id: int | None, comment: str = "") -> ApplyResult:
        return apply.apply_from_db(self.config, self.sessions, author_id, comment=comment,
                                   asterisk_check=True)

    def _revision_info(self, session: Session, rev: ConfigRevision, full: bool) -> RevisionInfo:
        return RevisionInfo(
            id=rev.id, status=rev.status, at=rev.created_at, author=self._author(session, rev.author_id),
            comment=rev.comment or "", message=rev.message or "", files_hash=rev.files_hash or "",
            can_rollback=rev.templates is not None and bool(rev.files),
            templates=dict(rev.templates or {}) if full else {},
            files=dict(rev.files or {}) if full else {},
            output=rev.output or "" if full else "",
        )

    def history(self, limit: int = 100) -> list[RevisionInfo]:
        with self.sessions() as session:
            newest = select(ConfigRevision).order_by(ConfigRevision.id.desc()).limit(limit)
            rows = session.scalars(newest).all()
            return [self._revision_info(session, r, False) for r in rows]

    def revision(self, revision_id: int) -> RevisionInfo | None:
        with self.sessions() as session:
            rev = session.get(ConfigRevision, revision_id)
            return self._revision_info(session, rev, True) if rev is not None else None

    def rollback(self, revision_id: int, author_id: int | None, comment: str = "") -> ApplyResult:
        with self.sessions() as session:
            rev = session.get(ConfigRevision, revision_id)
            templates = dict(rev.templates) if rev is not None and rev.templates is not None else None
        if rev is None:
            return ApplyResult(False, f"Ревизии №{revision_id} нет")
        if templates is None:
            return ApplyResult(False, f"Ревизия №{revision_id} создана до появления консоли АТС и не хранит "
                                      "шаблоны: откат к ней невозможен")
        note = comment or f"откат к ревизии №{revision_id}"
        result = apply.apply_from_db(self.config, self.sessions, author_id, overrides=templates,
                                     comment=note, asterisk_check=True)
        if result.ok:
            self._restore(templates, author_id, note)
        return result

    def _restore(self, templates: Mapping[str, str], author_id: int | None, comment: str) -> None:
        """Make `templates` the stored overrides (each change a new version)."""
        with transaction(self.sessions) as session:
            rows = self._rows(session)
            for name in TEMPLATES:
                want = templates.get(name)
                row = rows.get(name)
                have = row.text if row is not None else None
                if want == have:
                    continue
                if row is None:
                    row = PbxTemplate(name=name, text=want, version=1, author_id=author_id)
                    session.add(row)
                else:
                    row.text, row.version, row.author_id = want, row.version + 1, author_id
                session.add(PbxTemplateVersion(name=name, version=row.version,
                                               action=TEMPLATE_SAVED if want is not None else TEMPLATE_RESET,
                                               text=want, comment=comment, author_id=author_id))


def make_console(config: Config, sessions: sessionmaker[Session]) -> PbxConsole:
    """The console the launcher gives the web app and the CLI."""
    return Console(config, sessions)
