"""Render → validate → write → reload → check; roll back on a failed check.

Every call records one ConfigRevision:
- "rejected": the templates did not render or the result failed validation; nothing written;
- "applied": written, reloaded, and Asterisk shows every expected endpoint and extension;
- "failed": written and reloaded, but the check failed; the files that were there before
  (what the running Asterisk had loaded) are restored and reloaded again.

Revisions keep the rendered files with the ARI/AMI secrets masked, so the audit trail never
holds them; the rollback therefore uses the on-disk snapshot taken just before writing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import functools
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf import dryrun, runtime
from asterisk_conf.render import (
    DTLS_CERT_FILE,
    DTLS_KEY_FILE,
    FILES,
    TEMPLATE_DIR,
    PbxInput,
    RenderError,
    config_tag,
    load_input,
    render,
    resolves_to_loopback,
)
from asterisk_conf.validate import validate
from clinic import ami
from clinic.config import Config, PbxConfig
from clinic.db import transaction
from clinic.models import REVISION_APPLIED, REVISION_FAILED, REVISION_REJECTED, ConfigRevision
from clinic.models.pbx import PbxTemplate
from clinic.pbx_port import ApplyResult, PbxApplier, Problem
from clinic.softphone import ensure_dtls_cert

log = logging.getLogger(__name__)

# What to ask Asterisk after a file changed. modules.conf only matters at start.
RELOAD = {
    "logger.conf": "logger reload",
    "http.conf": "module reload http",
    "ari.conf": "module reload res_ari.so",
    "manager.conf": "manager reload",
    "rtp.conf": "module reload res_rtp_asterisk.so",
    "musiconhold.conf": "module reload res_musiconhold.so",
    "pjsip.conf": "module reload res_pjsip.so",
    "extensions.conf": "dialplan reload",
}
CHECK_DEADLINE = 2.0  # seconds for a reloaded config to show up in AMI


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "********")
    return text


# ---------------------------------------------------------------- files


def _owner(pbx: PbxConfig) -> tuple[int, int] | None:
    if pbx.mode == "local":
        return runtime.chroot_ids(pbx.chroot)
    return None


def write_atomic(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    """tmp file in the same folder + rename: Asterisk never reads a half-written file."""
    tmp = path.with_name(f".{path.name}.mis-tmp")
    existing = path.stat() if path.exists() else None
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    # the files hold the ARI/AMI secrets: readable by Asterisk's user only
    os.chmod(tmp, 0o640)
    if owner is None and existing is not None:
        owner = (existing.st_uid, existing.st_gid)
    if owner is not None and os.geteuid() == 0:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def install_dtls_cert(config: Config) -> None:
    """Copy the browser endpoints' DTLS certificate and key (made once in the data dir) to
    where the rendered pjsip.conf names them, readable by Asterisk's user only."""
    cert, key = ensure_dtls_cert(config.data_dir)
    keys = config.pbx.conf_dir / Path(DTLS_CERT_FILE).parent
    keys.mkdir(parents=True, exist_ok=True)
    owner = _owner(config.pbx)
    for source, name in ((cert, DTLS_CERT_FILE), (key, DTLS_KEY_FILE)):
        target = config.pbx.conf_dir / name
        text = source.read_text()
        if not target.exists() or target.read_text() != text:
            write_atomic(target, text, owner)


def snapshot(conf_dir: Path, names: tuple[str, ...] = FILES) -> dict[str, str | None]:
    """Current contents (None = absent) of the files we are about to write."""
    out: dict[str, str | None] = {}
    for name in names:
        path = conf_dir / name
        out[name] = path.read_text(encoding="utf-8", errors="replace") if path.exists() else None
    return out


def write_files(pbx: PbxConfig, files: dict[str, str | None]) -> list[str]:
    """Write (or remove, for None) the files; return the names whose content changed."""
    pbx.conf_dir.mkdir(parents=True, exist_ok=True)
    owner = _owner(pbx)
    changed: list[str] = []
    for name, text in files.items():
        path = pbx.conf_dir / name
        old = path.read_text(encoding="utf-8", errors="replace") if path.exists() else None
        if old == text:
            continue
        if text is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, text, owner)
        changed.append(name)
    return changed


@contextmanager
def _apply_lock(config: Config) -> Iterator[None]:
    # Two admins pressing «Применить» at once must not interleave write/reload/rollback.
    lock_path = config.data_dir / "pbx-apply.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- render + validate


@dataclass(frozen=True)
class Prepared:
    files: dict[str, str] | None
    problems: list[str]
    inp: PbxInput | None


# Clinic settings a caller may ask to try before they are stored (clinic.pbx_port.PbxApplier).
PENDING_FIELDS = frozenset({"sip_domain", "sip_port", "rtp_start", "rtp_end"})


def with_pending(inp: PbxInput, pending: Mapping[str, object] | None, pbx: PbxConfig) -> PbxInput:
    """The input with not-yet-saved settings in place of the stored ones."""
    if not pending:
        return inp
    unknown = set(pending) - PENDING_FIELDS
    if unknown:
        raise ValueError(f"pending settings not supported: {sorted(unknown)}")
    changes: dict[str, object] = dict(pending)
    if "sip_domain" in changes:
        domain = str(changes["sip_domain"])
        changes["loopback"] = pbx.mode == "local" or resolves_to_loopback(domain)
    return dataclasses.replace(inp, **changes)  # type: ignore[arg-type]


def prepare(
    config: Config,
    session_factory: sessionmaker[Session],
    template_dir: Path = TEMPLATE_DIR,
    pending: Mapping[str, object] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Prepared:
    """Render (with the clinic's template overrides: the stored ones when None) and validate."""
    if overrides is None:
        overrides = stored_overrides(session_factory)
    try:
        inp = with_pending(load_input(config, session_factory), pending, config.pbx)
        files = render(inp, template_dir, overrides)
    except RenderError as exc:
        return Prepared(None, [str(exc)], None)
    problems = validate(files)
    return Prepared(files, problems, inp)


# ---------------------------------------------------------------- reload + check


async def _reload(client: ami.AmiClient, changed: list[str], output: list[str] | None = None) -> None:
    for name in changed:
        cmd = RELOAD.get(name)
        if cmd is not None:  # modules.conf: only read at start
            lines = await client.command(cmd)
            if output is not None:
                output.append(f"> {cmd}")
                output.extend(line for line in lines if line.strip())


_EXTEN_LINE = re.compile(r"^\s*'([^']+)' =>", re.M)


async def _internal_extensions(client: ami.AmiClient) -> list[str]:
    """Extensions of [clinic-internal] itself, from `dialplan show`: one answer of text, where
    ShowDialPlan sends an event per priority (a thousand with 200 users, ~40 ms to parse)."""
    lines = await client.command("dialplan show clinic-internal")
    text = "\n".join(lines)
    # only the context's own block: included contexts follow with their own headers
    own = text.split("[ Context ", 2)[1] if text.count("[ Context ") >= 1 else ""
    own = own.split("Include =>", 1)[0]
    return _EXTEN_LINE.findall(own)


async def _problems(client: ami.AmiClient, inp: PbxInput, tag: str | None) -> list[str]:
    """What the running Asterisk lacks compared with the render we just wrote."""
    problems: list[str] = []
    want = sorted(u.sip_id for u in inp.users)
    want_ext = {u.extension for u in inp.users}

    async def nothing() -> list[str]:
        return []

    async def dialplan_tag() -> str | None:
        got = await client.action({"Action": "Getvar", "Variable": "MIS_CONFIG_TAG"})
        return got[0].get("Value")

    # every question at once (AMI answers by ActionID): one round trip instead of one per
    # endpoint, which was most of an apply's time with 200 users
    listed, tag_now, extensions, *details = await asyncio.gather(
        client.endpoints(),
        dialplan_tag() if tag is not None else nothing(),
        _internal_extensions(client) if want_ext else nothing(),
        *(client.action({"Action": "PJSIPShowEndpoint", "Endpoint": ep}) for ep in (want if tag else ())),
        return_exceptions=True,
    )
    for answer in (listed, tag_now, extensions):
        if isinstance(answer, BaseException):
            raise answer
    have = set(listed)  # type: ignore[arg-type]
    problems += [f"абонент {ep} не загружен" for ep in want if ep not in have]
    for ep, detail in zip(want if tag else (), details, strict=True):
        if ep not in have:
            continue  # said above; its detail is an error answer
        if isinstance(detail, BaseException):
            raise detail
        setvar = " ".join(m.get("SetVar", "") for m in detail if m.get("Event") == "EndpointDetail")
        if f"MIS_CONFIG_TAG={tag}" not in setvar:
            problems.append(f"Asterisk не принял новые настройки абонента {ep} (оставил прежние)")
    if tag is not None and tag_now != tag:
        problems.append("план набора не перезагружен (extensions.conf не принят)")
    if want_ext:
        problems += [f"номера {ext} нет в плане набора" for ext in sorted(want_ext - set(extensions))]  # type: ignore[arg-type]
    return problems


async def _reload_and_check(
    client: ami.AmiClient, changed: list[str], inp: PbxInput | None, tag: str | None = None,
    output: list[str] | None = None,
) -> list[str]:
    await _reload(client, changed, output)
    if inp is None:
        return []
    deadline = time.monotonic() + CHECK_DEADLINE
    while True:
        problems = await _problems(client, inp, tag)
        if not problems or time.monotonic() > deadline:
            return problems
        await _sleep_poll()


async def _sleep_poll() -> None:
    # polling with a deadline: pjsip applies a reload asynchronously on its own thread
    await asyncio.sleep(runtime.POLL)


def _ari_answers(pbx: PbxConfig) -> bool:
    deadline = time.monotonic() + CHECK_DEADLINE
    client = _ari_client()
    while True:
        if runtime.ari_ready(pbx, timeout=1.0, client=client):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(runtime.POLL)


@functools.cache
def _ari_client() -> httpx.Client:
    """One client for every apply of the process: building one costs ~15 ms (its SSL
    context), a tenth of an apply. httpx clients are safe to share between threads."""
    return httpx.Client(trust_env=False)


def _pbx_reachable(config: Config) -> bool:
    if config.pbx.mode == "local":
        return runtime.running_pid(config.pbx, config.data_dir) is not None
    return True  # external: find out through AMI itself


# ---------------------------------------------------------------- apply


def files_hash(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def stored_overrides(session_factory: sessionmaker[Session]) -> dict[str, str]:
    """The clinic's template overrides as saved ({template name: text})."""
    with session_factory() as session:
        rows = session.scalars(select(PbxTemplate).where(PbxTemplate.text.is_not(None)))
        return {row.name: row.text for row in rows if row.text is not None}


@dataclass(frozen=True)
class _Audit:
    """What a revision keeps besides files and message."""

    comment: str = ""
    templates: Mapping[str, str] | None = None
    output: str = ""


def _record(
    session_factory: sessionmaker[Session], author_id: int | None, status: str, files: dict[str, str],
    message: str, secrets: tuple[str, ...], audit: _Audit = _Audit(),
) -> int:
    with transaction(session_factory) as session:
        rev = ConfigRevision(
            author_id=author_id,
            status=status,
            files={k: mask_secrets(v, secrets) for k, v in files.items()},
            message=mask_secrets(message, secrets),
            comment=audit.comment,
            files_hash=files_hash(files) if files else "",
            templates=dict(audit.templates) if audit.templates is not None else None,
            output=mask_secrets(audit.output, secrets),
        )
        session.add(rev)
        session.flush()
        return rev.id


def apply_from_db(
    config: Config,
    session_factory: sessionmaker[Session],
    author_id: int | None,
    *,
    reload: bool = True,
    template_dir: Path = TEMPLATE_DIR,
    pending: Mapping[str, object] | None = None,
    overrides: Mapping[str, str] | None = None,
    comment: str = "",
    asterisk_check: bool = False,
) -> ApplyResult:
    """Apply the DB's configuration to Asterisk; see the module docstring.

    reload=False only writes (after render + validate), for the moment before Asterisk
    starts; the same happens when the local Asterisk is not running. `pending` settings
    (PENDING_FIELDS) replace the stored ones: the caller saves them only on success.
    `overrides`: the template overrides to render with (None: the stored ones).
    `asterisk_check`: before writing, a throw-away Asterisk parses the files (dryrun.py);
    what it rejects never reaches the running one (the PBX console's path).
    """
    pbx = config.pbx
    secrets: tuple[str, ...] = (pbx.ari_password, pbx.ami_secret)
    with _apply_lock(config):
        if overrides is None:
            overrides = stored_overrides(session_factory)
        prep = prepare(config, session_factory, template_dir, pending, overrides)
        if prep.inp is not None:
            secrets = prep.inp.secrets or secrets
        problems = [Problem("", None, p) for p in prep.problems]
        output = ""
        if prep.files is not None and not problems and asterisk_check:
            dry = dryrun.check(pbx, prep.files)
            problems, output = dry.problems, dry.output
        audit = _Audit(comment, overrides, output)
        if prep.files is None or problems or prep.inp is None:
            msg = "Конфигурация отклонена, Asterisk не изменён: " + "; ".join(str(p) for p in problems)
            rid = _record(session_factory, author_id, REVISION_REJECTED, prep.files or {}, msg, secrets,
                          audit)
            return ApplyResult(False, mask_secrets(msg, secrets), rid, output=mask_secrets(output, secrets),
                               problems=tuple(problems))
        files, inp = prep.files, prep.inp
        if inp.dtls_cert_file:
            install_dtls_cert(config)

        if not reload or not _pbx_reachable(config):
            changed = write_files(pbx, dict(files))
            msg = (f"Конфигурация записана без перезагрузки Asterisk (изменены файлы: "
                   f"{', '.join(changed) or 'нет'}); она будет загружена при запуске")
            rid = _record(session_factory, author_id, REVISION_APPLIED, files, msg, secrets, audit)
            return ApplyResult(True, msg, rid, output=mask_secrets(output, secrets))

        before = snapshot(pbx.conf_dir, tuple(files))
        changed = write_files(pbx, dict(files))
        said: list[str] = [output] if output else []
        try:
            failures = ami.run(pbx, lambda c: _reload_and_check(c, changed, inp, config_tag(files), said))
        except ami.AmiError as exc:
            failures = [f"нет связи с AMI ({exc})"]
        if not failures and not _ari_answers(pbx):
            failures = ["ARI не отвечает"]
        output = "\n".join(said)
        audit = _Audit(comment, overrides, output)
        if not failures:
            msg = (f"Конфигурация применена: абонентов {len(inp.users)}, изменены файлы: "
                   f"{', '.join(changed) or 'нет'}")
            warning = restart_warning(before, files)
            noted = f"{msg}. {warning}" if warning else msg
            rid = _record(session_factory, author_id, REVISION_APPLIED, files, noted, secrets, audit)
            log.info("pbx config applied, revision %s", rid)
            return ApplyResult(True, msg, rid, warning, output=mask_secrets(output, secrets))

        # roll back to what Asterisk had before, and make it load that again
        restored = write_files(pbx, before)
        rollback_note = "предыдущая конфигурация восстановлена"
        try:
            ami.run(pbx, lambda c: _reload_and_check(c, restored, None))
        except ami.AmiError as exc:
            rollback_note = f"файлы восстановлены, но перезагрузка не удалась ({exc})"
        msg = f"Проверка не пройдена: {'; '.join(failures)}; {rollback_note}"
        rid = _record(session_factory, author_id, REVISION_FAILED, files, msg, secrets, audit)
        log.warning("pbx config failed the check, revision %s rolled back", rid)
        return ApplyResult(False, mask_secrets(msg, secrets), rid, output=mask_secrets(output, secrets),
                           problems=tuple(Problem("", None, f) for f in failures))


RESTART_NEEDED = (
    "Порт SIP и адрес SIP-сервера вступят в силу только после перезапуска Asterisk "
    "(pjsip не перечитывает транспорт при перезагрузке); до тех пор телефоны работают на прежнем порту"
)


def _section(text: str | None, name: str) -> str:
    """The lines of `[name]` in a config file, without comments and blank lines."""
    out: list[str] = []
    inside = False
    for raw in (text or "").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            inside = line.split("]", 1)[0] == f"[{name}"
            continue
        if inside and line:
            out.append(line)
    return "\n".join(out)


def restart_warning(before: dict[str, str | None], files: dict[str, str]) -> str:
    """A reload keeps pjsip's transport as it was: say so when the new one differs."""
    old, new = before.get("pjsip.conf"), files.get("pjsip.conf")
    if old is None or new is None:
        return ""
    return RESTART_NEEDED if _section(old, "transport-udp") != _section(new, "transport-udp") else ""


def make_applier(config: Config, session_factory: sessionmaker[Session]) -> PbxApplier:
    """The callable the web app gets (clinic.pbx_port.PbxApplier)."""

    def _apply(author_id: int | None, *, pending: Mapping[str, object] | None = None) -> ApplyResult:
        return apply_from_db(config, session_factory, author_id, pending=pending)

    return _apply


def ari_info(pbx: PbxConfig) -> dict[str, object]:
    resp = httpx.get(f"{pbx.ari_url}/asterisk/info", auth=(pbx.ari_user, pbx.ari_password), timeout=2.0,
                     trust_env=False)
    resp.raise_for_status()
    return resp.json()
