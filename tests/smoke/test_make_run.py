"""`make run` as a newcomer meets it: `mis-telephony run` brings the whole system up on the
embedded defaults, the demo extension registers a real SIP phone, and Ctrl-C leaves no
process behind.

Runs in its own pytest invocation (`-m smoke`, see the Makefile) because it starts the local
Asterisk itself, which the `pbx` test session also does.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pbx.pbxkit import wait_registered
from sip_phone import BaresipPhone, PhoneSpec, make_tone_wav

from asterisk_conf import runtime
from clinic.config import Config
from clinic.seed import DEMO_PASSWORD, DEMO_USERS

pytestmark = pytest.mark.smoke
BANNER = "mis-telephony запущена"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Running:
    def __init__(self, proc: subprocess.Popen[str], env: dict[str, str]) -> None:
        self.proc, self.env = proc, env
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_line(self, needle: str, timeout: float) -> None:
        """Wait for `needle` in the output; give up at the deadline or as soon as the process
        has exited and everything it printed has been read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"exited with {self.proc.returncode} before {needle!r}:\n{''.join(self.output)}"
                    ) from None
                continue
            if needle in line:
                return
        raise AssertionError(f"no {needle!r} within {timeout} s:\n{''.join(self.output)}")


@pytest.fixture()
def system(tmp_path: Path) -> Iterator[Running]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIS_") and k != "DATABASE_URL"}
    env.update(MIS_DATA_DIR=str(tmp_path / "var"), MIS_WEB_PORT=str(_free_port()),
               MIS_HOOKS_PORT=str(_free_port()), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "launcher.cli", "run"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    running = Running(proc, env)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()


def _config(env: dict[str, str]) -> Config:
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("MIS_") or k == "DATABASE_URL"]:
            mp.delenv(key)
        for key, value in env.items():
            if key.startswith("MIS_"):
                mp.setenv(key, value)
        return Config.from_env()


def test_make_run_serves_registers_and_stops_cleanly(system: Running, tmp_path: Path) -> None:
    system.wait_for_line(BANNER, timeout=600)  # first run builds the chroot
    config = _config(system.env)

    with urllib.request.urlopen(f"http://127.0.0.1:{config.web_port}/login", timeout=5) as resp:
        assert resp.status == 200 and "Вход" in resp.read().decode()
    with urllib.request.urlopen(f"http://127.0.0.1:{config.hooks_port}/healthz", timeout=5) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}
    auth = base64.b64encode(f"{config.pbx.ari_user}:{config.pbx.ari_password}".encode()).decode()
    ari = urllib.request.Request(
        f"{config.pbx.ari_url}/asterisk/info", headers={"Authorization": f"Basic {auth}"}
    )
    with urllib.request.urlopen(ari, timeout=5) as resp:
        assert "system" in json.loads(resp.read())
    banner = "".join(system.output)
    assert f"reg1 / {DEMO_PASSWORD}" in banner and "101" in banner

    reg1 = next(u for u in DEMO_USERS if u.login == "reg1")
    assert reg1.extension and reg1.sip_password
    spec = PhoneSpec(reg1.extension, reg1.sip_password, 5170, 4407, 21700, 21799)
    with BaresipPhone(tmp_path / "phone101", spec, make_tone_wav(tmp_path / "tone.wav", seconds=5)).start():
        wait_registered(config, {reg1.extension})

    asterisk_pid = runtime.running_pid(config.pbx, config.data_dir)
    assert asterisk_pid is not None
    system.proc.send_signal(signal.SIGINT)
    assert system.proc.wait(90) == 0, "".join(system.output)
    assert runtime.running_pid(config.pbx, config.data_dir) is None
    assert not Path(f"/proc/{asterisk_pid}").exists()
    for port in (config.web_port, config.hooks_port, config.pbx.http_port):
        assert not _port_open(port), f"port {port} still open after Ctrl-C"
