"""Benchmark: click-to-call where the registrar's phone is the browser softphone (headless
Debian chromium with fake media, JsSIP over Asterisk's websocket, DTLS-SRTP, opus), against
the same calls where it is a SIP phone (baresip), in one run on the local Asterisk.

    flock /tmp/mis-pbx.lock .venv/bin/python bench/softphone.py \
        [--sequential 20] [--concurrent 10] [--rounds 3] [--shared-cpus]

Both paths go through the same control API of the same ari_app (in its own process, as in
production) and reach the same patient: a baresip phone behind the clinic's trunk that
answers by itself. Only the registrar's leg differs:

- browser: users with «Встроенный софтфон» (softphone_ring=web): each has his own browser
  context logged in with the «Софтфон» window open, registered, «Настройки звука» folded
  (as once the headset is checked) and its standby line up (ari_app/standby): «Звонок» takes
  that line as his leg, already answered; a window without one would answer its own
  callback leg by itself (`Call-Info: …;answer-after=0`), and the report says how many calls
  went which way;
- baresip: users with «SIP-телефон»: one baresip process with an account per user, auto-answer.

Latency = from POST /calls to the call's «Разговор» (the `talking` event on the control
API's event stream: both parties in the bridge). Sequential: `--sequential` calls one after
another per path, alternating paths call by call. Concurrent: `--rounds` rounds of
`--concurrent` calls at once per path, alternating. Each call is hung up once talking; the
next round starts when the calls have left Asterisk and every window is idle again (its new
standby line up, media connected), as a registrar's window is between calls. Asterisk's CPU
per call is read from /proc/<asterisk pid> (schedstat) over each path's calls, set-up to
the next round's start (a browser's new standby line included). One call per path first as
a warm-up, not counted. Target: browser p95 ≤ 1.5 × baresip p95, no failure.

Where the phones run: in a clinic the registrars' phones are their own computers and desk
phones, never the server. On this machine they share it, so by default the server side
(Asterisk, ari_app, the web app, this client and the patient's phone behind the trunk) runs
on the first CPU and the registrars' phones of both paths (chromium with its ten windows, the
baresip bank) on the others, so that ten browsers' audio threads (which Chrome runs at
real-time priority where it may) do not take the server's CPU as ten separate computers
would not. `--shared-cpus` leaves every process free to run anywhere (the figures then
include that contention; README gives both).
Asterisk is started for the run on a temporary database (it must not be running already)
and stopped at the end whatever happens; so are the phones, the browser and the web app.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import calls as c2c  # bench/calls.py: the control-API client, ari_app's process, CPU and waits

ROOT = c2c.ROOT
sys.path.insert(0, str(ROOT / "tests"))

from pbx.softphonekit import CHROMIUM, PASSWORD, media_args, tone_file  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from ari_app.client import AriClient, wait_connected  # noqa: E402
from asterisk_conf import apply, runtime  # noqa: E402
from clinic.config import Config  # noqa: E402
from clinic.db import make_engine, make_session_factory, transaction  # noqa: E402
from clinic.models import User  # noqa: E402
from clinic.security import hash_password  # noqa: E402
from clinic.softphone import RING_WEB, STANDBY_EXTEN, web_endpoint  # noqa: E402
from tests.sip_phone import BaresipPhone, PhoneSpec, make_tone_wav  # noqa: E402

PATHS = ("browser", "baresip")
TARGET = 1.5


def prepare(workdir: Path, per_path: int) -> tuple[Config, dict[str, list[int]]]:
    """The database and Asterisk's configuration: `per_path` users whose phone is the browser
    (they can log in), as many with a SIP phone; the trunk leads to the patient's baresip."""
    config = c2c.setup(workdir, 2 * per_path, c2c.LEGS["sip"])
    sessions = make_session_factory(make_engine(config.database_url))
    password = hash_password(PASSWORD)
    ids: dict[str, list[int]] = {"browser": [], "baresip": []}
    with transaction(sessions) as s:
        for i in range(2 * per_path):
            user = s.scalars(select(User).where(User.sip_id == c2c.sip_id(i))).one()
            if i < per_path:
                user.softphone_ring, user.password_hash = RING_WEB, password
            ids["browser" if i < per_path else "baresip"].append(user.id)
    written = apply.apply_from_db(config, sessions, None, reload=False)
    if not written.ok:
        raise SystemExit(written.message)
    return config, ids


@contextlib.contextmanager
def web_app(config: Config, control_url: str, port: int) -> Iterator[str]:
    """The web app (its softphone window and account) on `port`, in a thread."""
    from webhooks.app import create_app

    pbx = replace(config.pbx, control_url=control_url)
    sessions = make_session_factory(make_engine(config.database_url))
    app = create_app(replace(config, pbx=pbx), session_factory=sessions)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def start_phones(
    workdir: Path, per_path: int, calls: int, phones_cpus: set[int] | None
) -> list[BaresipPhone]:
    """The SIP path's registrars (one baresip, an account each, auto-answer; on the phones'
    CPUs) and the patient behind the trunk (beside the server)."""
    tone = make_tone_wav(workdir / "tone8k.wav")
    most = 2 * calls + 8
    first, *rest = (
        PhoneSpec(c2c.sip_id(i), f"pw-{i}", c2c.PHONES_SIP, c2c.PHONES_CTRL, *c2c.PHONES_RTP)
        for i in range(per_path, 2 * per_path)
    )
    bank = BaresipPhone(workdir / "phones", replace(first, max_calls=most), tone, rest)
    pstn = PhoneSpec(
        c2c.PSTN_NUMBER, "unused", c2c.PSTN_SIP, c2c.PSTN_CTRL, *c2c.PSTN_RTP, regint=0, max_calls=most
    )
    phones = [bank.start()]
    if phones_cpus and bank.proc is not None:
        pin(bank.proc.pid, phones_cpus)
    phones.append(BaresipPhone(workdir / "pstn", pstn, tone).start())
    return phones


def placement() -> tuple[set[int], set[int]] | None:
    """(server CPUs, registrar phones' CPUs), or None on a one-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of a running process onto `cpus` (threads made later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


def chromium_on(folder: Path, cpus: set[int] | None) -> str:
    """Debian's chromium, or a wrapper starting it on `cpus` (its every process inherits it)."""
    if not cpus:
        return CHROMIUM
    wrapper = folder / "chromium-on-phone-cpus"
    listed = ",".join(str(c) for c in sorted(cpus))
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {listed} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def wait_online(ari: AriClient, resources: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        online = set()
        for resource in resources:
            with contextlib.suppress(Exception):
                if await ari.endpoint_state("PJSIP", resource) == "online":
                    online.add(resource)
        if online == resources:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"not registered: {sorted(resources - online)[:5]}")
        await asyncio.sleep(0.2)  # poll with a deadline


async def open_softphones(browser: Any, web: str, per_path: int) -> list[Any]:
    """A browser context per registrar: logged in, «Софтфон» open and registered."""
    contexts = []
    for i in range(per_path):
        context = await browser.new_context(locale="ru-RU")
        context.set_default_timeout(30_000)
        page = await context.new_page()
        await page.goto(f"{web}/login")
        await page.get_by_label("Логин").fill(f"bench{i}")
        await page.get_by_label("Пароль").fill(PASSWORD)
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_url(lambda url: "/login" not in url)
        page.on("console", _console)
        await page.goto(f"{web}/phone/softphone")
        await page.get_by_text("Софтфон подключён").wait_for()
        await page.get_by_text("Настройки звука").click()  # folded: the level meter stops
        contexts.append(context)
    return contexts


async def wait_idle(ari: AriClient, url: str, pages: list[Any], timeout: float = 30.0) -> None:
    """Until the last round has left Asterisk (every channel left is a window's standby line,
    answered) and nothing is unwritten in the call log, and every window is idle with its
    standby line's media connected: neither path's round pays for the other's tail."""
    deadline = time.monotonic() + timeout
    ready: list[Any] = []
    while True:
        unsaved = await c2c.unsaved_rows(url)
        left = await ari.channels()
        calls = [ch for ch in left if not (ch.exten == STANDBY_EXTEN and ch.state == "Up")]
        if not unsaved and not calls and len(left) == len(pages):
            ready = [await page.evaluate("() => window.misSoftphoneStandby()") for page in pages]
            if all(ready):
                return
        if time.monotonic() > deadline:
            ready = [await page.evaluate("() => window.misSoftphoneStandbyState()") for page in pages]
            names = [ch.name for ch in calls]
            raise SystemExit(
                f"the last round did not end: calls {names}, {len(left)} channels for {len(pages)} "
                f"windows, windows ready {ready}, {unsaved} rows unwritten"
            )
        await asyncio.sleep(0.05)  # poll with a deadline


def _console(msg: Any) -> None:
    if msg.type == "error":
        print(f"browser: {msg.text}", file=sys.stderr)


class Client(c2c.OurPath):
    """bench/calls.py's control-API client, also keeping why a call ended (for failures)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reasons: dict[str, str] = {}

    def _on_event(self, raw: str, now: float) -> None:
        super()._on_event(raw, now)
        if raw.startswith("event: call") and '"state": "ended"' in raw:
            call = json.loads(raw.partition("\ndata: ")[2])
            self.reasons[call["uid"]] = call.get("reason") or ""

    async def one(self, i: int) -> tuple[float | None, str | None]:
        ms, uid = await super().one(i)
        if ms is None and uid is not None:
            print(f"call {uid} failed: {self.reasons.get(uid, 'no «Разговор» in time')}", file=sys.stderr)
        return ms, uid


class NoMeter:
    """calls.OurPath.round's meter: this benchmark reads Asterisk's CPU around whole calls."""

    @contextlib.contextmanager
    def during(self, path: str) -> Iterator[None]:
        yield


class Results:
    def __init__(self) -> None:
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.failures: dict[str, int] = dict.fromkeys(PATHS, 0)
        self.cpu: dict[str, float] = dict.fromkeys(PATHS, 0.0)
        self.first_leg: dict[str, list[float]] = {path: [] for path in PATHS}  # the registrar answered
        self.calls: dict[str, int] = dict.fromkeys(PATHS, 0)
        self.page_answer: list[float] = []  # the windows' own INVITE → 200 OK, ms
        self.on_standby: dict[str, int] = dict.fromkeys(PATHS, 0)  # calls whose leg was a standby line


async def run_round(path: str, client: Any, n: int, asterisk: int, ari: AriClient, url: str,
                    pages: list[Any], results: Results | None, shape: str) -> None:  # fmt: skip
    before = c2c.cpu_seconds(asterisk)
    client.take_marks()
    latencies, failed = await client.round(n, NoMeter())
    await wait_idle(ari, url, pages)
    spent = c2c.cpu_seconds(asterisk) - before
    marks = client.take_marks()
    if results is None:
        client.first_leg = []
        return  # the warm-up
    results.on_standby[path] += len(marks.get("standby", []))
    results.latency.setdefault((path, shape), []).extend(latencies)
    results.failures[path] += failed
    results.cpu[path] += spent
    results.calls[path] += n
    results.first_leg[path] += client.first_leg
    client.first_leg = []


async def measure(config: Config, url: str, web: str, ids: dict[str, list[int]], args: argparse.Namespace,
                  asterisk: int, phones_cpus: set[int] | None) -> Results:  # fmt: skip
    pbx = config.pbx
    ari = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, "bench-softphone")
    reader = asyncio.create_task(ari.run_events(lambda _e: asyncio.sleep(0)))
    if not await wait_connected(ari, 10):
        raise SystemExit("ARI did not connect")
    per_path = len(ids["browser"])
    clients = {path: Client(url, pbx.control_token, ids[path], c2c.LEGS["sip"]) for path in PATHS}
    results = Results()
    async with async_playwright() as playwright:
        folder = Path(tempfile.mkdtemp(prefix="bench-softphone-media-"))
        args_ = media_args(tone_file(folder, 600))
        chromium = chromium_on(folder, phones_cpus)
        browser = await playwright.chromium.launch(executable_path=chromium, args=args_)
        try:
            contexts = await open_softphones(browser, web, per_path)
            pages = [context.pages[-1] for context in contexts]
            await wait_online(ari, {web_endpoint(c2c.sip_id(i)) for i in range(per_path)}
                              | {c2c.sip_id(i) for i in range(per_path, 2 * per_path)})  # fmt: skip
            for client in clients.values():
                await client.start()
            await wait_idle(ari, url, pages)
            for path in PATHS:  # warm-up: one call each
                await run_round(path, clients[path], 1, asterisk, ari, url, pages, None, "")
            for _ in range(args.sequential):
                for path in PATHS:
                    await run_round(path, clients[path], 1, asterisk, ari, url, pages, results, "sequential")
            for _ in range(args.rounds):
                for path in PATHS:
                    n = args.concurrent
                    await run_round(path, clients[path], n, asterisk, ari, url, pages, results, "concurrent")
            for context in contexts:  # warm-up included
                page = context.pages[-1]
                results.page_answer += await page.evaluate("() => window.misSoftphoneAnswerTimes()")
        finally:
            for client in clients.values():
                await client.close()
            await browser.close()
            await ari.close()
            reader.cancel()
    return results


def report(results: Results, args: argparse.Namespace, where: str) -> float:
    pct = c2c.percentile
    print("\nsoftphone.py: click-to-call, the registrar's phone a browser softphone vs a baresip SIP phone")
    print(where)
    print(f"{'':30}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'calls':>7}")
    for shape in ("sequential", "concurrent"):
        for path in PATHS:
            lat = results.latency.get((path, shape), [])
            label = f"{path}, {shape}"
            worst = max(lat, default=float("nan"))
            print(f"{label:30}{pct(lat, 50):9.1f}{pct(lat, 95):9.1f}{worst:9.1f}{len(lat):7d}")
    legs = results.first_leg
    up = ", ".join(f"{p} {pct(legs[p], 50):.0f}/{pct(legs[p], 95):.0f}" for p in PATHS)
    print(f"the registrar's phone answered, ms from the request, p50/p95: {up}")
    counted = results.calls["browser"]
    standby = results.on_standby["browser"]
    print(f"browser calls whose leg was the window's standby line: {standby} of {counted}")
    page = results.page_answer
    if page:  # calls that found no standby line: the window answered its own leg
        print(f"the browser's own answer (INVITE → 200 OK in the page), ms p50/p95/max: "
              f"{pct(page, 50):.0f}/{pct(page, 95):.0f}/{max(page):.0f} ({len(page)} calls)")  # fmt: skip
    for path in PATHS:
        per_call = results.cpu[path] / max(1, results.calls[path]) * 1000
        print(f"Asterisk CPU ms per call ({path}, set-up to hang-up): {per_call:.1f}")
    print(f"failures: browser {results.failures['browser']}, baresip {results.failures['baresip']}")
    ratios = {}
    for shape in ("sequential", "concurrent"):
        ours = pct(results.latency.get(("browser", shape), []), 95)
        base = pct(results.latency.get(("baresip", shape), []), 95)
        ratios[shape] = ours / base
        print(f"p95 ratio browser/baresip, {shape}: {ratios[shape]:.2f}")
    cpu_ratio = (results.cpu["browser"] / max(1, results.calls["browser"])) / max(
        1e-9, results.cpu["baresip"] / max(1, results.calls["baresip"])
    )
    print(f"Asterisk CPU per call ratio browser/baresip: {cpu_ratio:.2f}")
    worst = max(ratios.values())
    met = worst <= TARGET and not any(results.failures.values())
    print(f"target (p95 ≤ {TARGET:.1f}× the baresip path, 0 failures): {'met' if met else 'NOT met'}")
    return worst if not any(results.failures.values()) else float("nan")


def serve_ari(port: int) -> None:
    """ari_app's process (bench/calls.py's), its warnings on stderr: why a call failed."""
    logging.basicConfig(level=logging.WARNING, format="ari_app %(levelname)s %(name)s: %(message)s")
    c2c.serve_ari(port, "sip")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the web app's access log
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=20, help="calls one after another, per path")
    parser.add_argument("--concurrent", type=int, default=10, help="calls at once in a round, per path")
    parser.add_argument("--rounds", type=int, default=3, help="concurrent rounds per path")
    parser.add_argument("--shared-cpus", action="store_true",
                        help="no CPU placement: the browsers share every CPU with Asterisk")  # fmt: skip
    args = parser.parse_args()
    cpus = None if args.shared_cpus else placement()
    if cpus is not None:
        os.sched_setaffinity(0, cpus[0])  # the server side (Asterisk and ari_app inherit it)
    phones_cpus = cpus[1] if cpus is not None else None
    per_path = max(args.concurrent, 2)
    phones: list[BaresipPhone] = []
    with tempfile.TemporaryDirectory(prefix="bench-softphone-") as tmp:
        config, ids = prepare(Path(tmp), per_path)
        runtime.provision(config.pbx, say=lambda _m: None)
        try:
            started = runtime.start(config.pbx, config.data_dir)
        except runtime.PbxRuntimeError as exc:
            raise SystemExit(f"bench/softphone.py: {exc}") from None
        child = None
        try:
            phones = start_phones(Path(tmp), per_path, args.concurrent, phones_cpus)
            port, web_port = c2c.free_port(), c2c.free_port()
            # the pages' event streams (ari_app's listener) answer the web app's origin
            os.environ["MIS_WEB_ORIGIN"] = f"http://127.0.0.1:{web_port}"
            child = multiprocessing.get_context("spawn").Process(target=serve_ari, args=(port,))
            child.start()
            url = f"http://127.0.0.1:{port}"
            c2c.wait_healthy(url, child)
            with web_app(config, url, web_port) as web:
                results = asyncio.run(measure(config, url, web, ids, args, started.pid or 0, phones_cpus))
        finally:
            try:
                if child is not None and child.is_alive():
                    child.terminate()
                    child.join(10)
                for phone in phones:
                    phone.stop()
            finally:
                runtime.stop(config.pbx, config.data_dir)  # never leave Asterisk behind
    version = runtime.asterisk_version_in(config.pbx.chroot)
    where = (f"server on CPU {sorted(cpus[0])}, the registrars' phones on CPUs {sorted(cpus[1])}"
             if cpus is not None else "every process on every CPU (--shared-cpus)")  # fmt: skip
    ratio = report(results, args, f"{version}; Asterisk start {started.seconds:.2f} s; {where}")
    return 0 if ratio == ratio and ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
