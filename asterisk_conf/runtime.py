"""The local Asterisk 22 runtime: a Debian sid chroot built by mmdebstrap, run as the chroot's
`asterisk` user (reference/pbx-lab.md §1-3), whose uid/gid are those of a host user created
for it alone (HOST_USER): the chroot's own uid would belong to another service on the host.
In production (`PbxConfig.mode == "external"`) Asterisk is someone else's service:
provision/start/stop only say so.

Everything here is synchronous and blocking on purpose: it is called from the launcher and
from test fixtures, never from a request handler.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from clinic.config import PbxConfig

PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm")
MARKER = ".mis-telephony-provisioned"
DIST_CONF = "etc/asterisk.dist"  # the package's own configs, kept aside before we overwrite them
HOST_USER = "mis-asterisk"  # the host's account for our Asterisk; nothing else runs as it
POLL = 0.05  # seconds between readiness probes
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")  # what /etc/hosts may hold as a name


class PbxRuntimeError(RuntimeError):
    """A runtime step failed; the message says what to do, in plain words."""


@dataclass(frozen=True)
class StepResult:
    ok: bool
    message: str
    seconds: float = 0.0
    pid: int | None = None


def _external(step: str) -> StepResult:
    return StepResult(True, f"{step}: Asterisk is managed externally (MIS_PBX_MODE=external); nothing to do")


# ---------------------------------------------------------------- paths


def run_dir(data_dir: Path) -> Path:
    path = data_dir / "pbx"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path(data_dir: Path) -> Path:
    return run_dir(data_dir) / "asterisk.out"


def pid_path(data_dir: Path) -> Path:
    return run_dir(data_dir) / "asterisk.pid"


def is_provisioned(pbx: PbxConfig) -> bool:
    return (pbx.chroot / MARKER).exists() and (pbx.chroot / "usr/sbin/asterisk").exists()


# ---------------------------------------------------------------- provision


def host_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host's own apt uses (deb822 `URIs:` first, then one-line `deb`)."""
    deb822 = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in deb822:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "debian" in line and "security" not in line:
                return line.split()[1]
    one_line = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts and parts[0] == "deb" and "security" not in line:
                # skip an optional [options] block
                rest = [p for p in parts[1:] if not p.startswith("[") and not p.endswith("]")]
                if rest:
                    return rest[0]
    raise PbxRuntimeError("no Debian mirror found in the host's apt sources (/etc/apt)")


def _ensure_mmdebstrap(say: Callable[[str], None]) -> None:
    if shutil.which("mmdebstrap"):
        return
    say("mmdebstrap is missing: installing it with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "mmdebstrap"], check=True, env=env)


def provision(pbx: PbxConfig, say: Callable[[str], None] = print) -> StepResult:
    """Build the chroot once; later calls reuse it (marker file). Returns the build time."""
    if pbx.mode == "external":
        return _external("provision")
    if is_provisioned(pbx):
        return StepResult(True, f"chroot already provisioned at {pbx.chroot}")
    if os.geteuid() != 0:
        raise PbxRuntimeError("building the Asterisk chroot needs root (mmdebstrap, mount, chroot)")
    _ensure_mmdebstrap(say)
    mirror = host_mirror()
    pbx.chroot.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the final place (same filesystem) so the final rename is atomic: an
    # interrupted build never leaves a half chroot where is_provisioned() would look.
    tmp = Path(tempfile.mkdtemp(prefix=pbx.chroot.name + ".build-", dir=pbx.chroot.parent))
    started = time.monotonic()
    say(f"building Debian sid chroot with {', '.join(PACKAGES)} from {mirror} ...")
    cmd = [
        "mmdebstrap", "--variant=apt", "--aptopt=Acquire::Check-Valid-Until \"false\"",
        f"--include={','.join(PACKAGES)}", "sid", str(tmp), mirror,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-15:])
        raise PbxRuntimeError(f"mmdebstrap failed (exit {proc.returncode}):\n{tail}")
    dist = tmp / DIST_CONF
    if not dist.exists():
        shutil.copytree(tmp / "etc/asterisk", dist, symlinks=True)
    (tmp / MARKER).write_text(asterisk_version_in(tmp) + "\n")
    if pbx.chroot.exists():
        # an unmarked leftover (e.g. an older manual build): replace it
        _unmount_all(pbx.chroot)
        shutil.rmtree(pbx.chroot)
    tmp.rename(pbx.chroot)
    seconds = time.monotonic() - started
    return StepResult(True, f"chroot built at {pbx.chroot} in {seconds:.1f} s", seconds)


def asterisk_version_in(chroot: Path) -> str:
    proc = subprocess.run(
        ["chroot", str(chroot), "/usr/sbin/asterisk", "-V"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or proc.stderr.strip()


# ---------------------------------------------------------------- mounts / ownership


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == target for line in fh if len(line.split()) > 1)


def _mount(chroot: Path) -> None:
    if not _mounted(chroot / "proc"):
        subprocess.run(["mount", "-t", "proc", "proc", str(chroot / "proc")], check=True)
    if not _mounted(chroot / "dev"):
        subprocess.run(["mount", "--bind", "/dev", str(chroot / "dev")], check=True)


def _unmount_all(chroot: Path, deadline: float = 5.0) -> None:
    # Right after Asterisk exits the kernel may still be releasing its files ("target is
    # busy"): retry until a deadline, then detach lazily so nothing stays mounted for good.
    for sub in ("dev", "proc"):
        target = chroot / sub
        end = time.monotonic() + deadline
        while _mounted(target):
            done = subprocess.run(["umount", str(target)], capture_output=True, check=False)
            if done.returncode == 0:
                break
            if time.monotonic() > end:
                subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)
                break
            time.sleep(POLL)


def chroot_ids(chroot: Path, user: str = "asterisk") -> tuple[int, int]:
    """uid/gid of a user in the chroot's own /etc/passwd (not the host's)."""
    for line in (chroot / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2]), int(parts[3])
    raise PbxRuntimeError(f"user {user!r} not found in {chroot}/etc/passwd")


def _chroot_ids_in_use(chroot: Path) -> set[int]:
    ids: set[int] = set()
    for name in ("etc/passwd", "etc/group"):
        for line in (chroot / name).read_text().splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                ids.add(int(parts[2]))
    return ids


def _free_system_id(chroot: Path) -> int:
    """A system id (100-999) that is neither a user nor a group on the host or in the chroot."""
    taken = _chroot_ids_in_use(chroot) | {p.pw_uid for p in pwd.getpwall()}
    taken |= {g.gr_gid for g in grp.getgrall()}
    for candidate in range(999, 99, -1):
        if candidate not in taken:
            return candidate
    raise PbxRuntimeError("no free system uid/gid for the Asterisk user (100-999 all taken)")


def host_account(chroot: Path) -> tuple[int, int]:
    """uid/gid of HOST_USER, created (no home, no shell) the first time."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(HOST_USER)
        return entry.pw_uid, entry.pw_gid
    ident = str(_free_system_id(chroot))
    subprocess.run(["groupadd", "--system", "--gid", ident, HOST_USER], check=True)
    subprocess.run(
        ["useradd", "--system", "--uid", ident, "--gid", ident, "--no-create-home",
         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
         "--comment", "Asterisk of mis-telephony", HOST_USER],
        check=True,
    )  # fmt: skip
    return int(ident), int(ident)


def _align_chroot_user(chroot: Path, uid: int, gid: int) -> None:
    """Give the chroot's `asterisk` user and group the host account's ids, and every file
    they owned in the chroot with them."""
    old_uid, old_gid = chroot_ids(chroot)
    if (old_uid, old_gid) == (uid, gid):
        return
    _rewrite_id(chroot / "etc/passwd", "asterisk", {2: uid, 3: gid})
    _rewrite_id(chroot / "etc/group", "asterisk", {2: gid})
    find = ["chroot", str(chroot), "find", "/", "-xdev"]
    subprocess.run([*find, "-uid", str(old_uid), "-exec", "chown", "-h", str(uid), "{}", "+"], check=True)
    subprocess.run([*find, "-gid", str(old_gid), "-exec", "chgrp", "-h", str(gid), "{}", "+"], check=True)


def _rewrite_id(path: Path, name: str, fields: dict[int, int]) -> None:
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        parts = line.split(":")
        if parts[0] == name:
            for index, value in fields.items():
                parts[index] = str(value)
            lines[i] = ":".join(parts)
    path.write_text("\n".join(lines) + "\n")


def _prepare_tree(chroot: Path) -> None:
    # Asterisk drops root, so everything it writes must be owned by its user (pbx-lab §2);
    # the recording folder is not created by the package, and /run/asterisk (normally made by
    # systemd's RuntimeDirectory) is missing in a fresh chroot; astdb would replay old contacts.
    script = (
        "install -d -o asterisk -g asterisk /var/spool/asterisk/recording /var/run/asterisk && "
        "chown -R asterisk:asterisk /var/lib/asterisk /var/log/asterisk /var/spool/asterisk "
        "/var/run/asterisk /etc/asterisk"
    )
    subprocess.run(["chroot", str(chroot), "sh", "-c", script], check=True)
    (chroot / "var/lib/asterisk/astdb.sqlite3").unlink(missing_ok=True)
    write_hosts(chroot)


def hosts_file(hostname: str) -> str:
    """The chroot's /etc/hosts: loopback names, and the machine's own name on loopback."""
    ok = _HOSTNAME.fullmatch(hostname) and hostname != "localhost"
    names = f"localhost {hostname}" if ok else "localhost"
    return f"127.0.0.1 {names}\n::1 localhost ip6-localhost ip6-loopback\n"


def write_hosts(chroot: Path) -> None:
    """A debootstrapped tree has no /etc/hosts, so Asterisk's lookups of the machine's own
    name (getaddrinfo of gethostname(), made for WebRTC calls' addresses) went to DNS, which
    is out of reach here: each stalled ~5 s before failing. With the name in the file
    (nsswitch: `hosts: files dns`) it answers at once."""
    path = chroot / "etc/hosts"
    text = hosts_file(socket.gethostname())
    if not path.exists() or path.read_text(errors="replace") != text:
        path.write_text(text)
        path.chmod(0o644)


# ---------------------------------------------------------------- ports


def _listen_ports(conf_dir: Path, pbx: PbxConfig) -> list[tuple[str, int]]:
    """(proto, port) pairs this Asterisk will bind, read from the configs it will load."""
    ports: list[tuple[str, int]] = [("tcp", pbx.http_port), ("tcp", pbx.ami_port)]
    pjsip = conf_dir / "pjsip.conf"
    if pjsip.exists():
        for line in pjsip.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "bind" and ":" in value:
                port = value.split(";")[0].strip().rsplit(":", 1)[1]
                if port.isdigit():
                    ports.append(("udp", int(port)))
    return ports


def port_in_use(proto: str, port: int, host: str = "127.0.0.1") -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # Asterisk binds with SO_REUSEADDR, so connections of a stopped one in TIME_WAIT
            # do not keep it from starting; probe the same way (only a listener counts)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


# ---------------------------------------------------------------- process


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int(pid_path(data_dir).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours still answers kill(0); treat it as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _is_our_asterisk(pid: int, chroot: Path) -> bool:
    try:
        root = os.readlink(f"/proc/{pid}/root")
    except OSError:
        return False
    return _alive(pid) and Path(root) == chroot.resolve()


def running_pid(pbx: PbxConfig, data_dir: Path) -> int | None:
    """PID of the Asterisk we started (PID file + still alive + rooted in our chroot)."""
    pid = _read_pid(data_dir)
    if pid is not None and _is_our_asterisk(pid, pbx.chroot):
        return pid
    return None


def ari_ready(pbx: PbxConfig, timeout: float = 1.0, client: httpx.Client | None = None) -> bool:
    """GET /asterisk/info answers 200 with our credentials."""
    if client is None:
        # trust_env=False: our ARI is on loopback, never behind a proxy from the environment
        with httpx.Client(trust_env=False) as own:
            return ari_ready(pbx, timeout, own)
    try:
        auth = (pbx.ari_user, pbx.ari_password)
        resp = client.get(f"{pbx.ari_url}/asterisk/info", auth=auth, timeout=timeout)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


PORTS_GRACE = 5.0  # seconds start() waits for a dying Asterisk's ports to be released


def _busy_ports(pbx: PbxConfig) -> list[str]:
    return [f"{proto}/{port}" for proto, port in _listen_ports(pbx.conf_dir, pbx) if port_in_use(proto, port)]


def start(pbx: PbxConfig, data_dir: Path) -> StepResult:
    """Start Asterisk in the chroot and wait until it is ready (log line + ARI answers).

    The configs in `conf_dir` must already be ours (apply_from_db(..., reload=False) writes
    them); start() does not render anything itself.
    """
    if pbx.mode == "external":
        return _external("start")
    if not is_provisioned(pbx):
        raise PbxRuntimeError(f"no Asterisk chroot at {pbx.chroot}: run `pbx provision` first")
    pid = running_pid(pbx, data_dir)
    if pid is not None:
        return StepResult(True, f"Asterisk already running (pid {pid})", 0.0, pid)
    busy = _busy_ports(pbx)
    deadline = time.monotonic() + PORTS_GRACE
    while busy and time.monotonic() < deadline:
        # an Asterisk killed a moment ago may still be exiting (no longer "ours" by its
        # /proc root, its sockets not closed yet): poll until they are, within the grace
        time.sleep(0.1)
        busy = _busy_ports(pbx)
    if busy:
        raise PbxRuntimeError(
            "cannot start the local Asterisk: port(s) "
            + ", ".join(busy)
            + " already in use on 127.0.0.1 (another Asterisk or service?). Stop it, or use "
            "MIS_PBX_MODE=external to drive that Asterisk instead."
        )
    _align_chroot_user(pbx.chroot, *host_account(pbx.chroot))
    _mount(pbx.chroot)
    _prepare_tree(pbx.chroot)
    log = log_path(data_dir)
    started = time.monotonic()
    with open(log, "wb") as out:
        # `chroot` execs asterisk and -f keeps it in the foreground, so Popen's pid is
        # Asterisk's own; start_new_session is setsid(): our Ctrl-C does not reach it.
        # the FastAGI key lives in Asterisk's environment, where the dialplan reads it
        # (${ENV(MIS_AGI_KEY)}): never in a config file Asterisk would echo into its log
        env = {**os.environ, "MIS_AGI_KEY": pbx.agi_secret}
        proc = subprocess.Popen(
            ["chroot", str(pbx.chroot), "/usr/sbin/asterisk", "-U", "asterisk", "-G", "asterisk",
             "-f", "-n", "-vvv"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )
    pid_path(data_dir).write_text(f"{proc.pid}\n")
    try:
        # one client for the whole wait: building one per probe costs ~30 ms (SSL context)
        with httpx.Client(trust_env=False) as client:
            return _wait_ready(pbx, proc, log, started, client)
    except PbxRuntimeError:
        _kill(proc.pid)
        raise


def _wait_ready(
    pbx: PbxConfig, proc: subprocess.Popen[bytes], log: Path, started: float, client: httpx.Client
) -> StepResult:
    deadline = started + START_DEADLINE
    seen_ready = False
    ready_at = started
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PbxRuntimeError(f"Asterisk exited with code {proc.returncode} during start; see {log}\n"
                                  + _tail(log))
        if not seen_ready:
            seen_ready = b"Asterisk Ready" in log.read_bytes()
            ready_at = time.monotonic()
        if seen_ready and ari_ready(pbx, timeout=0.5, client=client):
            now = time.monotonic()
            seconds = now - started
            msg = (f"Asterisk started (pid {proc.pid}) in {seconds:.2f} s "
                   f"('Asterisk Ready' at {ready_at - started:.2f} s, ARI +{(now - ready_at) * 1000:.0f} ms)")
            return StepResult(True, msg, seconds, proc.pid)
        time.sleep(POLL)
    what = "ARI did not answer" if seen_ready else "'Asterisk Ready' never appeared"
    raise PbxRuntimeError(f"Asterisk did not become ready in {START_DEADLINE:.0f} s ({what}); see {log}\n"
                          + _tail(log))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid, 5.0)


def _reap(pid: int, timeout: float) -> bool:
    """Wait for pid to exit; reap it if it is our child. True when gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass  # not our child (started by another process): only watch it
        if not _alive(pid):
            return True
        time.sleep(POLL)
    return not _alive(pid)


def cli(pbx: PbxConfig, command: str, timeout: float = 15.0) -> str:
    """Run an Asterisk CLI command through the remote console inside the chroot."""
    proc = subprocess.run(
        ["chroot", str(pbx.chroot), "/usr/sbin/asterisk", "-rx", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    return proc.stdout


def stop(pbx: PbxConfig, data_dir: Path) -> StepResult:
    if pbx.mode == "external":
        return _external("stop")
    pid = running_pid(pbx, data_dir)
    started = time.monotonic()
    killed = False
    if pid is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            cli(pbx, "core stop now", timeout=STOP_DEADLINE)
        if not _reap(pid, STOP_DEADLINE):
            killed = True
            _kill(pid)
    pid_path(data_dir).unlink(missing_ok=True)
    if pbx.chroot.exists():
        _unmount_all(pbx.chroot)
    seconds = time.monotonic() - started
    if pid is None:
        return StepResult(True, "Asterisk was not running", seconds)
    how = "killed after the stop deadline" if killed else "stopped"
    return StepResult(True, f"Asterisk (pid {pid}) {how} in {seconds:.2f} s", seconds, pid)


def status(pbx: PbxConfig, data_dir: Path) -> StepResult:
    if pbx.mode == "external":
        up = ari_ready(pbx)
        answers = "answers" if up else "does not answer"
        return StepResult(up, f"external Asterisk at {pbx.ari_url}: ARI {answers}")
    if not is_provisioned(pbx):
        return StepResult(False, f"not provisioned (no chroot at {pbx.chroot})")
    pid = running_pid(pbx, data_dir)
    if pid is None:
        return StepResult(False, f"provisioned at {pbx.chroot}; Asterisk not running")
    up = ari_ready(pbx)
    answers = "answers" if up else "does not answer"
    return StepResult(up, f"Asterisk running (pid {pid}); ARI {answers}", pid=pid)
