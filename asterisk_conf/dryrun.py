"""Have Asterisk itself parse a rendered configuration without touching the running one.

A second, throw-away Asterisk starts in the same chroot (or, for an external Asterisk, from
the host's own binary when there is one) with its own asterisk.conf: its own config, run,
log, db and spool folders in a temporary directory, so it shares no control socket, no astdb
and no file with the running Asterisk. It loads only the modules that parse our files
(pbx_config, res_pjsip and the modules pjsip.conf needs, rtp, musiconhold), with HTTP and AMI
switched off, so it opens no TCP port. pjsip refuses to load a transport it cannot bind, so
the copy's SIP transports are moved to a free UDP port on 127.0.0.1 (line numbers kept) for
the ~0.3 s the process lives; no phone knows that port. Then `dialplan show` and
`pjsip show endpoints` tell what Asterisk built, its log what it rejected, and the process
is stopped and its folder removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from asterisk_conf import runtime
from asterisk_conf.validate import REQUIRED_CONTEXTS, ParseError, parse, resolved
from clinic.config import PbxConfig
from clinic.pbx_port import Problem

DEADLINE = 20.0  # seconds for the throw-away Asterisk to boot and answer
POLL = 0.01  # seconds between looks for its control socket (it boots in ~0.2 s)
# Sets of files this process has seen Asterisk parse without a problem: sha256 → when. «Сохранить»
# runs the check; «Применить» right after renders the same bytes and need not boot a second
# throw-away Asterisk to hear the same answer. Any difference in any file is a new check.
VERIFIED_FOR = 15 * 60.0
_verified: dict[str, float] = {}
MODULES = (
    "res_sorcery_config.so", "res_sorcery_memory.so", "res_sorcery_astdb.so", "res_pjproject.so",
    "res_http_websocket.so", "res_pjsip.so", "res_pjsip_session.so", "res_pjsip_transport_websocket.so",
    "res_pjsip_endpoint_identifier_ip.so", "res_pjsip_endpoint_identifier_user.so",
    "res_pjsip_outbound_registration.so", "res_pjsip_authenticator_digest.so",
    "res_pjsip_outbound_authenticator_digest.so", "res_rtp_asterisk.so", "res_musiconhold.so",
    "pbx_config.so",
)
# Modules whose complaints are about our files (the rest grumble about files we do not ship).
_OURS = re.compile(r"^(config|config_options|pbx_config|pbx|res_pjsip\w*|res_sorcery_config|"
                   r"res_rtp_asterisk|res_musiconhold|loader)\.c$")
_LOG = re.compile(r"\b(WARNING|ERROR)\[\d+\](?:\[[^\]]*\])?:?\s+([\w.]+?)(?::\d+)?(?:\s+\w+)?:\s+(.*)$")
_NOTICE = re.compile(_LOG.pattern.replace("WARNING|ERROR", "NOTICE|VERBOSE"))
_AT_LINE = re.compile(r"line (\d+) of ([^\s',]+)")
_FILE_LINE = re.compile(r"([\w.-]+\.conf)(?:'|\b)(?:,? (?:at )?line (\d+))?")
_TRANSPORT_BIND = re.compile(r"^(\s*bind\s*=\s*)(\S+)")


@dataclass
class DryRun:
    ran: bool  # False: no Asterisk to ask (note says why)
    problems: list[Problem] = field(default_factory=list)
    output: str = ""  # what Asterisk printed: its log lines, then `dialplan show` heads
    note: str = ""
    seconds: float = 0.0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_copy(files: dict[str, str], inside: str) -> dict[str, str]:
    """The files the throw-away Asterisk reads: ours, with the network switched off."""
    out = dict(files)
    out["modules.conf"] = "[modules]\nautoload=no\n" + "".join(f"load => {m}\n" for m in MODULES)
    out["http.conf"] = "[general]\nenabled=no\n"
    out["manager.conf"] = "[general]\nenabled=no\n"
    out["logger.conf"] = "[general]\n[logfiles]\ncheck.log => notice,warning,error\n"
    out.pop("ari.conf", None)  # res_ari is not loaded
    port = _free_udp_port()
    lines = []
    in_transport = False
    for line in files.get("pjsip.conf", "").splitlines():
        stripped = line.split(";", 1)[0].strip()
        if stripped.startswith("["):
            in_transport = False
        if stripped.replace(" ", "") == "type=transport":
            in_transport = True
        m = _TRANSPORT_BIND.match(line)
        if m and in_transport:
            line = f"{m.group(1)}127.0.0.1:{port}"
        lines.append(line)
    # the transport's bind may come before its type=: rewrite every bind of the file then
    out["pjsip.conf"] = "\n".join(
        _TRANSPORT_BIND.sub(lambda m: f"{m.group(1)}127.0.0.1:{port}", ln) for ln in lines
    ) + "\n"
    dirs = {d: f"{inside}/{d}" for d in ("etc", "run", "log", "db", "spool", "cache")}
    out["asterisk.conf"] = (
        "[directories]\n"
        f"astetcdir => {dirs['etc']}\nastrundir => {dirs['run']}\nastlogdir => {dirs['log']}\n"
        f"astdbdir => {dirs['db']}\nastspooldir => {dirs['spool']}\nastcachedir => {dirs['cache']}\n"
        "astvarlibdir => /var/lib/asterisk\nastkeydir => /var/lib/asterisk\n"
        "astdatadir => /usr/share/asterisk\n"
        "[options]\n"
    )
    return out


def _where(text: str, ours: set[str]) -> tuple[str, int | None]:
    m = _AT_LINE.search(text)
    if m and Path(m.group(2)).name in ours:
        return Path(m.group(2)).name, int(m.group(1))
    for m2 in _FILE_LINE.finditer(text):
        if m2.group(1) in ours:
            return m2.group(1), int(m2.group(2)) if m2.group(2) else None
    return "", None


def _noise(line: str, ours: set[str]) -> bool:
    """A log line about something other than our files (cdr.conf we do not ship, ...)."""
    m = _LOG.search(line) or _NOTICE.search(line)
    if not m or not _OURS.match(m.group(2)):
        return True
    missing = re.search(r"Unable to load config file '([^']+)'", m.group(3))
    return bool(missing and missing.group(1) not in ours) or "pjproject.conf" in m.group(3)


def problems_in_log(log: str, ours: set[str]) -> list[Problem]:
    out: list[Problem] = []
    for line in log.splitlines():
        m = _LOG.search(line)
        if not m:
            continue
        source, message = m.group(2), m.group(3).strip()
        if not _OURS.match(source):
            continue
        missing = re.search(r"Unable to load config file '([^']+)'", message)
        if missing and missing.group(1) not in ours:
            continue  # a file we do not ship (cdr.conf, acl.conf...): defaults apply
        if "Could not load Stasis configuration" in message or "pjproject.conf" in message:
            continue
        message = re.sub(r"/\S*/etc/(?=[\w.-]+\.conf)", "", message)  # the throw-away's folder
        fname, lineno = _where(message, ours)
        bare = re.search(r"line (\d+) of$", message)
        if not fname and bare and "pjsip.conf" in ours:
            # sorcery names no file ("... at line 46 of"): it only reads pjsip.conf here
            fname, lineno = "pjsip.conf", int(bare.group(1))
        out.append(Problem(fname, lineno, f"Asterisk: {message}"))
    return out


def _endpoints(pjsip: str) -> dict[str, int]:
    """Endpoint name → line, as our parser reads pjsip.conf."""
    try:
        secs = parse(pjsip, "pjsip.conf")
    except ParseError:
        return {}
    tpl = {s.name: s for s in secs if s.is_template}
    return {s.name: s.line for s in secs if not s.is_template and resolved(s, tpl).get("type") == "endpoint"}


@dataclass(frozen=True)
class _Runner:
    prefix: tuple[str, ...]  # ("chroot", <root>) or ()
    binary: str
    conf: str  # asterisk.conf as the process sees it

    def rx(self, command: str, timeout: float = 10.0) -> str:
        proc = subprocess.run([*self.prefix, self.binary, "-C", self.conf, "-rx", command],
                              capture_output=True, text=True, timeout=timeout, check=False)
        return proc.stdout


def _place(pbx: PbxConfig) -> tuple[Path, str, tuple[str, ...], str, tuple[int, int] | None] | str:
    """(host folder, the same folder as Asterisk sees it, command prefix, binary, owner), or
    why no throw-away Asterisk can run here."""
    if pbx.mode == "local":
        if not runtime.is_provisioned(pbx):
            return f"нет chroot с Asterisk ({pbx.chroot}): выполните `mis-telephony pbx provision`"
        if os.geteuid() != 0:
            return "проверка в chroot требует прав root"
        host = Path(tempfile.mkdtemp(prefix="mis-check-", dir=pbx.chroot / "tmp"))
        owner = runtime.chroot_ids(pbx.chroot)
        return host, f"/tmp/{host.name}", ("chroot", str(pbx.chroot)), "/usr/sbin/asterisk", owner
    binary = shutil.which("asterisk")
    if binary is None:
        return "на этом сервере нет программы asterisk (внешняя АТС): проверка самим Asterisk пропущена"
    host = Path(tempfile.mkdtemp(prefix="mis-check-"))
    return host, str(host), (), binary, None


def _digest(pbx: PbxConfig, files: dict[str, str]) -> str:
    digest = hashlib.sha256(f"{pbx.mode}:{pbx.chroot}".encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def check(pbx: PbxConfig, files: dict[str, str]) -> DryRun:
    """Start a throw-away Asterisk on `files` (unless these very bytes passed a moment ago);
    see the module docstring."""
    key = _digest(pbx, files)
    seen = _verified.get(key)
    if seen is not None and time.monotonic() - seen < VERIFIED_FOR:
        return DryRun(True, output="Проверочный экземпляр Asterisk уже разобрал точно эти файлы "
                                   f"{time.monotonic() - seen:.0f} с назад без ошибок")
    result = _check(pbx, files)
    if result.ran and not result.problems:
        _verified[key] = time.monotonic()
        for old in [k for k, at in _verified.items() if time.monotonic() - at > VERIFIED_FOR]:
            del _verified[old]
    return result


def _check(pbx: PbxConfig, files: dict[str, str]) -> DryRun:
    place = _place(pbx)
    if isinstance(place, str):
        return DryRun(False, note=place)
    host, inside, prefix, binary, owner = place
    started = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None
    runner = _Runner(prefix, binary, f"{inside}/etc/asterisk.conf")
    try:
        for sub in ("etc", "run", "log", "db", "spool", "cache"):
            (host / sub).mkdir()
        for name, text in _check_copy(files, inside).items():
            (host / "etc" / name).write_text(text, encoding="utf-8")
        if owner is not None:
            for path in (host, *host.rglob("*")):
                os.chown(path, *owner)
        user = ["-U", "asterisk", "-G", "asterisk"] if owner is not None else []
        proc = subprocess.Popen([*prefix, binary, "-C", runner.conf, *user, "-f", "-n"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = started + DEADLINE
        ctl = host / "run" / "asterisk.ctl"
        while not ctl.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = _read(host / "log" / "check.log")
                ours = set(files)
                problems = problems_in_log(log, ours) or [
                    Problem("", None, "Asterisk не запустился на этой конфигурации")]
                return DryRun(True, problems, log, seconds=time.monotonic() - started)
            time.sleep(POLL)
        runner.rx("core waitfullybooted", timeout=DEADLINE)
        dialplan = runner.rx("dialplan show")
        endpoints = runner.rx("pjsip show endpoints")
        log = _read(host / "log" / "check.log")  # written before "fully booted" was answered
        problems = problems_in_log(log, set(files))
        contexts = set(re.findall(r"\[ Context '([^']+)' created by", dialplan))
        if "extensions.conf" in files:
            problems += [Problem("extensions.conf", None, f"Asterisk не создал обязательный контекст [{c}]")
                         for c in REQUIRED_CONTEXTS if c not in contexts]
        have = set(re.findall(r"^\s*Endpoint:\s+([^<\s/]+)", endpoints, re.M))
        problems += [Problem("pjsip.conf", line, f"Asterisk не создал абонента [{name}]")
                     for name, line in _endpoints(files.get("pjsip.conf", "")).items() if name not in have]
        summary = (f"Asterisk (проверочный экземпляр) разобрал конфигурацию: контекстов {len(contexts)}, "
                   f"абонентов PJSIP {len(have)}")
        said = [ln for ln in log.splitlines() if not _noise(ln, set(files))]
        return DryRun(True, problems, "\n".join([*said, summary]), seconds=time.monotonic() - started)
    finally:
        # killed, not stopped: a clean `core stop now` spends ~0.9 s unloading pjsip, and
        # this process holds nothing that needs a clean end (its folder is removed below)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(timeout=5)
        shutil.rmtree(host, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
