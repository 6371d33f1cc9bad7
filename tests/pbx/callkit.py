"""Helpers for the call-control tests: the control API client, a server-sent-events reader,
an AMI event collector, and WAV measurements. Every wait is a condition with a deadline."""

from __future__ import annotations

import array
import asyncio
import contextlib
import io
import json
import math
import threading
import wave
from collections.abc import Callable
from typing import Any

import httpx
from eventskit import wait_until

from clinic import ami
from clinic.config import PbxConfig

Msg = dict[str, Any]


class Control:
    """The control API as the web side uses it: token + acting user per request."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url, headers={"X-Control-Token": token}, timeout=15, trust_env=False
        )

    def post(self, actor: int, path: str, body: Msg | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {}, headers={"X-Actor-Id": str(actor)})

    def get(self, actor: int, path: str) -> httpx.Response:
        return self.http.get(path, headers={"X-Actor-Id": str(actor)})

    def ok(self, actor: int, path: str, body: Msg | None = None) -> Msg:
        resp = self.post(actor, path, body)
        assert resp.status_code in (200, 201), (path, resp.status_code, resp.text)
        return resp.json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.http.close()


class SseReader:
    """Reads `/events` of the control API in a thread; events kept in order. Takes the
    Control client, or the bare httpx client of one (the fake-ARI harness)."""

    def __init__(self, control: Control | httpx.Client, actor: int | str) -> None:
        self.events: list[tuple[str, Msg]] = []
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self._stop = False
        self._http = control.http if isinstance(control, Control) else control
        self._actor = actor
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"sse-{actor}")
        self.thread.start()
        assert self.connected.wait(10), "SSE stream did not open"

    def _run(self) -> None:
        params = {"user": "all"} if self._actor == "all" else {}
        headers = {"X-Actor-Id": "0" if self._actor == "all" else str(self._actor)}
        with (
            contextlib.suppress(httpx.HTTPError),
            self._http.stream(
                "GET", "/events", params=params, headers=headers, timeout=httpx.Timeout(5, read=None)
            ) as resp,
        ):
            kind = ""
            for line in resp.iter_lines():
                if self._stop:
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    with self.cond:
                        self.events.append((kind, data))
                        self.cond.notify_all()
                    if kind == "hello":
                        self.connected.set()

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def wait_for(self, pred: Callable[[str, Msg], bool], timeout: float = 15.0, since: int = 0) -> Msg:
        found: list[Msg] = []

        def match() -> bool:
            for kind, data in self.events[since:]:
                if pred(kind, data):
                    found.append(data)
                    return True
            return False

        with self.cond:
            if not self.cond.wait_for(match, timeout):
                seen = [(k, d.get("state"), d.get("uid")) for k, d in self.events[since:]]
                raise TimeoutError(f"SSE event not seen in {timeout} s; seen: {seen}")
        return found[0]

    def state(self, uid: str, state: str, timeout: float = 15.0, since: int = 0) -> Msg:
        return self.wait_for(
            lambda k, d: k == "call" and d.get("uid") == uid and d.get("state") == state, timeout, since
        )

    def kinds(self, uid: str) -> list[str]:
        """The kinds of event seen so far about call `uid`, in order."""
        with self.cond:
            return [k for k, d in self.events if d.get("uid") == uid]

    def close(self) -> None:
        self._stop = True


class AmiEvents:
    """An AMI session in its own thread collecting every event."""

    def __init__(self, pbx: PbxConfig) -> None:
        self.events: list[dict[str, str]] = []
        self.cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ami-events")
        self.thread.start()
        self.client = ami.AmiClient.from_config(pbx)
        asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(10)

    async def _connect(self) -> None:
        await self.client.connect()
        self.client.on_event("*", self._on)

    def _on(self, ev: Any) -> None:
        with self.cond:
            self.events.append(dict(ev))
            self.cond.notify_all()

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def wait_for(
        self, pred: Callable[[dict[str, str]], bool], timeout: float = 10.0, since: int = 0
    ) -> dict[str, str]:
        found: list[dict[str, str]] = []

        def match() -> bool:
            for ev in self.events[since:]:
                if pred(ev):
                    found.append(ev)
                    return True
            return False

        with self.cond:
            if not self.cond.wait_for(match, timeout):
                raise TimeoutError(
                    f"AMI event not seen; got {[e.get('Event') for e in self.events[since:]][-40:]}"
                )
        return found[0]

    def close(self) -> None:
        async def _close() -> None:
            self.client.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def wav_stats(data: bytes) -> tuple[float, float, float]:
    """(seconds, RMS, dominant frequency estimated from zero crossings) of a 16-bit mono WAV."""
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if not samples:
        return 0.0, 0.0, 0.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))
    seconds = len(samples) / rate
    return seconds, rms, crossings / 2 / seconds


def wait_idle(*phones: Any, timeout: float = 10) -> None:
    """Every phone reports no active call (baresip's `listcalls`)."""
    for phone in phones:
        idle = lambda p=phone: "Active calls (0)" in p.command("listcalls").get("data", "")  # noqa: E731
        wait_until(idle, timeout, "phone idle")
