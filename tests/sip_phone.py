"""A real SIP phone for the integration tests: baresip 1.0 driven over ctrl_tcp
(reference/pbx-lab.md §5.1).

One baresip process per phone, headless: G.711 only, an 8 kHz tone file as the microphone,
a null player (aubridge) as the speaker. ctrl_tcp speaks netstrings holding JSON both ways:
replies carry the request's `token`, pushed events carry `"event": true`. A reader thread
files both; tests wait on a condition variable with a deadline, never on a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Event = dict[str, Any]


def make_tone_wav(path: Path, seconds: float = 120.0, freq: float = 440.0, rate: int = 8000) -> Path:
    """8 kHz mono 16-bit sine: baresip's `ausine` only runs at 48 kHz (pbx-lab gotcha 6)."""
    if path.exists():
        return path
    period = rate / freq
    one = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * i / period))) for i in range(rate)
    )
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        for _ in range(int(seconds)):
            wav.writeframes(one)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class PhoneSpec:
    sip_id: str
    password: str
    sip_port: int  # baresip also opens TCP here and TLS on +1: keep phones >= 2 apart
    ctrl_port: int
    rtp_low: int
    rtp_high: int
    registrar: str = "127.0.0.1:5060"
    answermode: str = "auto"
    regint: int = 60  # 0: never registers (a phone "in the telephone network" behind the trunk)
    max_calls: int = 4  # calls at once in this baresip process (all its accounts together)


def write_config(folder: Path, spec: PhoneSpec, tone: Path, more: Sequence[PhoneSpec] = ()) -> None:
    """baresip's config and accounts: `spec`'s, and `more` accounts (user agents) in the same
    process (the benchmark's bank of phones)."""
    folder.mkdir(parents=True, exist_ok=True)
    # baresip does not expand variables: every path is written out in full
    (folder / "config").write_text(
        "\n".join([
            "poll_method         epoll",
            "call_local_timeout  120",
            f"call_max_calls      {spec.max_calls}",
            f"sip_listen          127.0.0.1:{spec.sip_port}",
            f"audio_player        aubridge,null{spec.sip_id}",
            f"audio_source        aufile,{tone}",
            f"audio_alert         aubridge,null{spec.sip_id}",
            "audio_buffer        20-160",
            f"rtp_ports           {spec.rtp_low}-{spec.rtp_high}",
            "rtcp_mux            no",
            "jitter_buffer_delay 5-10",
            "dns_server          127.0.0.1:53",
            "module_path         /usr/lib/baresip/modules",
            "module              g711.so",
            "module              aubridge.so",
            "module              aufile.so",
            "module_tmp          account.so",
            "module_app          menu.so",
            "module_app          ctrl_tcp.so",
            f"ctrl_tcp_listen     127.0.0.1:{spec.ctrl_port}",
            "",
        ])
    )
    (folder / "accounts").write_text("".join(account_line(one) + "\n" for one in (spec, *more)))


def account_line(spec: PhoneSpec) -> str:
    return (f"<sip:{spec.sip_id}@{spec.registrar};transport=udp>;auth_pass={spec.password};"
            f"answermode={spec.answermode};regint={spec.regint};audio_codecs=PCMU,PCMA")


class CtrlClient:
    """ctrl_tcp client: request/reply by token, pushed events kept in order."""

    def __init__(self, port: int, connect_deadline: float = 10.0) -> None:
        deadline = time.monotonic() + connect_deadline
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # baresip is still starting: poll the port with a deadline
        self.sock.settimeout(None)
        self.cond = threading.Condition()
        self.events: list[Event] = []
        self.replies: dict[str, Event] = {}
        self._cursor = 0
        self._token = 0
        self.closed = False
        self.reader = threading.Thread(target=self._read_loop, name=f"baresip-ctrl-{port}", daemon=True)
        self.reader.start()

    def _read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("ctrl_tcp closed")
            buf += chunk
        return buf

    def _read_loop(self) -> None:
        try:
            while True:
                digits = b""
                while (ch := self._read_exact(1)) != b":":
                    digits += ch
                body = self._read_exact(int(digits))
                if self._read_exact(1) != b",":
                    raise ConnectionError("bad netstring")
                msg = json.loads(body)
                with self.cond:
                    if msg.get("event"):
                        msg["_t"] = time.monotonic()
                        self.events.append(msg)
                    elif "token" in msg:
                        self.replies[str(msg["token"])] = msg
                    self.cond.notify_all()
        except (OSError, ConnectionError, ValueError):
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def request(self, command: str, params: str = "", timeout: float = 5.0) -> Event:
        with self.cond:
            self._token += 1
            token = str(self._token)
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))
        with self.cond:
            if not self.cond.wait_for(lambda: token in self.replies or self.closed, timeout):
                raise TimeoutError(f"no reply to {command!r} in {timeout} s")
            if token not in self.replies:
                raise ConnectionError("ctrl_tcp closed before the reply")
            return self.replies.pop(token)

    def mark(self) -> int:
        """Position in the event list: pass as `since` to ignore what came before."""
        with self.cond:
            return len(self.events)

    def wait_for_event(
        self, predicate: Callable[[Event], bool], timeout: float = 10.0, since: int | None = None
    ) -> Event:
        """First event after `since` (default: after the last matched one) that satisfies
        `predicate`; TimeoutError if none arrives in time."""
        with self.cond:
            start = self._cursor if since is None else since
            found: list[Event] = []

            def _match() -> bool:
                for i in range(start, len(self.events)):
                    if predicate(self.events[i]):
                        found.append(self.events[i])
                        self._cursor = i + 1
                        return True
                return self.closed

            if not self.cond.wait_for(_match, timeout) or not found:
                seen = [e.get("type") for e in self.events[start:]]
                raise TimeoutError(f"event not seen in {timeout} s; events since: {seen}")
            return found[0]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.reader.join(timeout=2)


def event_type(kind: str) -> Callable[[Event], bool]:
    return lambda e: e.get("type") == kind


class BaresipPhone:
    def __init__(self, folder: Path, spec: PhoneSpec, tone: Path, more: Sequence[PhoneSpec] = ()) -> None:
        self.folder = folder
        self.spec = spec
        self.tone = tone
        self.more = tuple(more)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctrl: CtrlClient | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "baresip.log"

    def start(self) -> BaresipPhone:
        write_config(self.folder, self.spec, self.tone, self.more)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(self.folder), "-n", "127.0.0.1"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=dict(os.environ, HOME=str(self.folder)),
            )
        try:
            self.ctrl = CtrlClient(self.spec.ctrl_port)
        except OSError:
            self.stop()
            msg = f"baresip {self.spec.sip_id} did not open ctrl_tcp; log:\n{self.log()}"
            raise RuntimeError(msg) from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self, command: str, params: str = "") -> Event:
        assert self.ctrl is not None, "phone not started"
        return self.ctrl.request(command, params)

    def wait_for_event(self, predicate: Callable[[Event], bool], timeout: float = 10.0,
                       since: int | None = None) -> Event:
        assert self.ctrl is not None, "phone not started"
        return self.ctrl.wait_for_event(predicate, timeout, since)

    def dial(self, uri: str) -> Event:
        return self.command("dial", uri)

    def hangup(self) -> Event:
        return self.command("hangup")

    def reregister(self, timeout: float = 10.0) -> Event:
        """Register again now (after an Asterisk restart forgot the contact). baresip 1.0 has
        no such command: a second user agent is created, and the old one deleted once the new
        one is registered. Not the other way round: baresip names its contact after the agent's
        memory address (sip:reg101-0x55…@), a new agent often gets the freed one's, and the old
        agent's un-REGISTER (sent as it is deleted, handled by Asterisk on another thread) could
        then remove the new registration."""
        mark = self.ctrl.mark() if self.ctrl is not None else 0
        self.command("uanew", account_line(self.spec))
        done = self.wait_for_event(lambda e: e.get("type") in ("REGISTER_OK", "REGISTER_FAIL"), timeout, mark)
        # uadel takes the first agent with this AOR in baresip's list: the old one
        self.command("uadel", f"sip:{self.spec.sip_id}@{self.spec.registrar}")
        if done.get("type") != "REGISTER_OK":
            raise RuntimeError(f"{self.spec.sip_id}: REGISTER failed: {done.get('param')}")
        return done

    def stop(self) -> None:
        if self.ctrl is not None:
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                self.ctrl.request("quit", timeout=2)
            self.ctrl.close()
            self.ctrl = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None

    def __enter__(self) -> BaresipPhone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
