"""Web tier at a clinic's scale: 40 registrars clicking through pages, with and without 200
open live-event streams (40 registrars × 5 tabs), in one run; and the delivery time of an
event from ari_app's publish to a stream.

The parts are the real ones, each in its own process as in production: the web app on
waitress (`launcher.serve.waitress_options`: 8 threads) and ari_app's events listener (the
real AriApp listener and its call-log process, without Asterisk: tests/eventskit.py), on a
SQLite database with the demo clinic and 40 registrars. The clicking clients run in this
process on one asyncio loop (aiohttp), the tabs' streams in a process of their own (as a
browser's tabs are; reading them here would slow the clicks' own timing): each registrar
logs in and then opens pages in a loop — the
scheduler, the patients, «Прием по телефону», the call log, the SMS dialog — looking at each
for about `--think` seconds (1 s by default; 0 clicks flat out). Phase A: no streams.
Phase B: the same clients while 200 streams are open (each got its token from the web app,
as a page does) and ari_app publishes an event to a random registrar every 20 ms; each
event carries its publish time. The phases alternate A, B, A, B … (`--rounds`), so a burst
of other work on the machine falls on both alike.

Prints page p50/p95 for both phases, their ratio (target: B/A p95 ≤ 1.3), errors (target
0), and the event delivery p50/p95 (target p95 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clinic.config import Config  # noqa: E402
from clinic.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from clinic.models import ROLE_REGISTRAR, Patient, User  # noqa: E402
from clinic.seed import clinic_today, seed_demo  # noqa: E402

PASSWORD = "Bench-pass-1"
PAGES = ("/schedule", "/patients?q=Иван", "/phone", "/calls", "/sms/send?patient_id={patient}")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(data_dir: Path, registrars: int) -> tuple[dict[str, str], list[int], list[int]]:
    """The environment of every process, the registrars' user ids, some patients' ids."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIS_") and k != "DATABASE_URL"}
    env.update(MIS_DATA_DIR=str(data_dir), MIS_WEB_PORT=str(_free_port()),
               MIS_CONTROL_URL="http://127.0.0.1:9", PYTHONUNBUFFERED="1")  # fmt: skip
    os.environ.update(env)
    config = Config.from_env()
    migrate(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    seed_demo(sessions, clinic_today(sessions))
    from werkzeug.security import generate_password_hash

    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")  # logins are not measured
    ids = []
    with transaction(sessions) as s:
        for n in range(registrars):
            user = User(login=f"bench{n:02d}", full_name=f"Регистратор {n}", password_hash=cheap,
                        role=ROLE_REGISTRAR, is_active=True, failed_logins=0)  # fmt: skip
            s.add(user)
            s.flush()
            ids.append(user.id)
        patients = list(s.scalars(select(Patient.id).limit(50)))
    return env, ids, patients


def _events_process(conn: Connection) -> None:
    """ari_app's events listener in a process of its own; publishes on request."""
    sys.path.insert(0, str(ROOT / "tests"))
    from eventskit import EventsListener

    listener = EventsListener(Config.from_env(), origins=(f"http://127.0.0.1:{os.environ['MIS_WEB_PORT']}",))
    conn.send(listener.url)

    async def publish(user_id: int) -> None:
        listener.app.notifier.publish("bench", {"t": time.time()}, user_ids={user_id}, everyone=False)

    while True:
        message = conn.recv()
        if message is None:
            break
        listener.run(publish(message))
    listener.stop()


async def _login(session: aiohttp.ClientSession, base: str, login: str) -> None:
    async with session.get(f"{base}/login") as resp:
        token = _CSRF.search(await resp.text())
    assert token, "no CSRF token on /login"
    form = {"login": login, "password": PASSWORD, "csrf_token": token.group(1), "next": ""}
    async with session.post(f"{base}/login", data=form, allow_redirects=False) as resp:
        assert resp.status == 302, (login, resp.status)


async def _clicker(session: aiohttp.ClientSession, base: str, patient: int, until: float, think: float,
                   times: list[float], errors: list[str]) -> None:  # fmt: skip
    n = random.randrange(len(PAGES))
    await asyncio.sleep(random.uniform(0, think))  # the registrars do not all click at once
    while time.monotonic() < until:
        if think:
            await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))  # reading the page
        path = PAGES[n % len(PAGES)].format(patient=patient)
        n += 1
        started = time.monotonic()
        try:
            async with session.get(base + path, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                await resp.read()
                if resp.status != 200:
                    errors.append(f"{path}: {resp.status}")
                    continue
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(f"{path}: {exc.__class__.__name__}")
            continue
        times.append(time.monotonic() - started)


async def _stream(session: aiohttp.ClientSession, base: str, delays: list[float], opened: asyncio.Event,
                  errors: list[str]) -> None:  # fmt: skip
    async with session.get(f"{base}/phone/events-token") as resp:
        where = await resp.json()
    url = f"{where['url']}?token={where['token']}"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
            if resp.status != 200:
                errors.append(f"stream: {resp.status}")
                opened.set()
                return
            opened.set()
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "bench":
                    delays.append(time.time() - json.loads(line[6:])["t"])
    except (aiohttp.ClientError, asyncio.CancelledError):
        pass


def _tabs_process(conn: Connection, base: str, registrars: int, tabs: int) -> None:
    """The registrars' open tabs, in a process of their own as in a browser: reading 200
    streams must not slow the page clicks' own measurement. On "open" it opens every stream
    and answers when all are open; on "close" it closes them and answers with the delivery
    delays and errors seen; None ends it."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        browsers = [_browser() for _ in range(registrars)]
        try:
            for n, tab in enumerate(browsers):
                await _login(tab, base, f"bench{n:02d}")
            conn.send("ready")
            while (command := await loop.run_in_executor(None, conn.recv)) == "open":
                delays: list[float] = []
                errors: list[str] = []
                opened = [asyncio.Event() for _ in range(registrars * tabs)]
                streams = [
                    asyncio.create_task(_stream(browsers[i // tabs], base, delays, opened[i], errors))
                    for i in range(len(opened))
                ]
                await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 120)
                conn.send("opened")
                assert await loop.run_in_executor(None, conn.recv) == "close"
                for task in streams:
                    task.cancel()
                await asyncio.gather(*streams, return_exceptions=True)
                conn.send((delays, errors))
            assert command is None
        finally:
            for tab in browsers:
                await tab.close()

    asyncio.run(main())


def _browser() -> aiohttp.ClientSession:
    # unsafe: keep the session cookie of an IP address (127.0.0.1), as a browser does
    jar = aiohttp.CookieJar(unsafe=True)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=jar)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 2 else float("nan")


async def _phase(base: str, sessions: list[aiohttp.ClientSession], patients: list[int], seconds: float,
                 think: float) -> tuple[list[float], list[str]]:  # fmt: skip
    times: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(
        _clicker(s, base, patients[i % len(patients)], until, think, times, errors)
        for i, s in enumerate(sessions)
    ))  # fmt: skip
    return times, errors


async def _run(
    args: argparse.Namespace, env: dict[str, str], user_ids: list[int], patients: list[int], conn: Connection
) -> None:
    base = f"http://127.0.0.1:{env['MIS_WEB_PORT']}"
    clients = [_browser() for _ in user_ids]
    tabs_conn, child = multiprocessing.Pipe()
    tabs = multiprocessing.get_context("spawn").Process(
        target=_tabs_process, args=(child, base, len(user_ids), args.tabs)
    )
    tabs.start()
    loop = asyncio.get_running_loop()

    async def ask(command: str) -> object:
        tabs_conn.send(command)
        return await loop.run_in_executor(None, tabs_conn.recv)

    try:
        assert await loop.run_in_executor(None, tabs_conn.recv) == "ready"
        for n, client in enumerate(clients):
            await _login(client, base, f"bench{n:02d}")
        await _phase(base, clients, patients, 3, args.think)  # warm-up
        times_a: list[float] = []
        times_b: list[float] = []
        errors_a: list[str] = []
        errors_b: list[str] = []
        delays: list[float] = []
        stream_errors: list[str] = []
        streams_open = len(user_ids) * args.tabs
        per_round = args.seconds / args.rounds
        # A and B alternate: whatever else the machine does weighs on both phases alike
        for _round in range(args.rounds):
            times, errors = await _phase(base, clients, patients, per_round, args.think)
            times_a += times
            errors_a += errors

            assert await ask("open") == "opened"

            async def publisher() -> None:
                while True:
                    conn.send(random.choice(user_ids))
                    await asyncio.sleep(args.publish_every)

            pub = asyncio.create_task(publisher())
            times, errors = await _phase(base, clients, patients, per_round, args.think)
            times_b += times
            errors_b += errors
            pub.cancel()
            seen, failed = await ask("close")  # type: ignore[misc]
            delays += seen
            stream_errors += failed
    finally:
        for s in clients:
            await s.close()
        tabs_conn.send(None)
        tabs.join(30)

    p95_a, p95_b = _pct(times_a, 95), _pct(times_b, 95)
    print(f"web_load.py: {len(user_ids)} registrars clicking for {args.seconds:.0f} s per phase "
          f"(in {args.rounds} alternating rounds), "
          f"{args.think:.1f} s on a page between clicks; waitress 8 threads; SQLite")  # fmt: skip
    print("                                    pages    p50 ms   p95 ms   errors")
    print(f"A  no event streams               {len(times_a):7d}  {_pct(times_a, 50):7.1f}  {p95_a:7.1f}  "
          f"{len(errors_a):6d}")  # fmt: skip
    label = f"{streams_open} streams open ({args.tabs} tabs each)"
    print(f"B  {label:<31}{len(times_b):7d}  {_pct(times_b, 50):7.1f}  {p95_b:7.1f}  "
          f"{len(errors_b) + len(stream_errors):6d}")  # fmt: skip
    print(f"page p95 ratio B/A: {p95_b / p95_a:.2f} (target ≤ 1.3)")
    print(f"event delivery, publish → stream, {len(delays)} events: p50 {_pct(delays, 50):.1f} ms, "
          f"p95 {_pct(delays, 95):.1f} ms (target p95 ≤ 50 ms)")  # fmt: skip
    for error in (errors_a + errors_b + stream_errors)[:10]:
        print("  error:", error)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrars", type=int, default=40)
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0, help="clicking time per phase, all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="A/B alternations the phases are split into")
    parser.add_argument("--publish-every", type=float, default=0.02)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds a registrar looks at a page before the next click (0: flat out)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mis-web-load-") as tmp:
        env, user_ids, patients = _prepare(Path(tmp) / "var", args.registrars)
        parent, child = multiprocessing.Pipe()
        events = multiprocessing.get_context("spawn").Process(target=_events_process, args=(child,))
        events.start()
        web: subprocess.Popen[bytes] | None = None
        try:
            env["MIS_EVENTS_PORT"] = parent.recv().rsplit(":", 1)[1]  # the listener is up, on this port
            web = subprocess.Popen([sys.executable, "-m", "launcher.cli", "web"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
            _wait_http(f"http://127.0.0.1:{env['MIS_WEB_PORT']}/login", web)
            asyncio.run(_run(args, env, user_ids, patients, parent))
        finally:
            parent.send(None)
            events.join(20)
            if web is not None:
                web.terminate()
                web.wait(20)
    return 0


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
