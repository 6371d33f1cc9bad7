"""Benchmark: N concurrent click-to-call sessions through our control API, against the same
originate + bridge sent straight to ARI as the baseline, in one run on the local Asterisk.

    .venv/bin/python bench/calls.py [--calls 50] [--rounds 10] [--legs sip|local|both]

By default (--legs both) it runs twice, each run on its own Asterisk: with SIP legs, then
with Local legs, and ends with both p95 ratios (the target is for SIP legs: ≤ 1.2; the
Local-channel ratio is reported beside it).

--legs sip is production's shape: every registrar has a real SIP phone (baresip, one
process holding an account per registrar, auto-answer, G.711 with a tone as microphone) and
the patient is reached through the clinic's trunk, which leads to another baresip playing
the telephone network; ari_app runs with its production endpoints (PJSIP/{sip_id},
PJSIP/{number}@trunk). --legs local puts both legs on Local channels into [clinic-loopback]
(answer + echo): no SIP at all, so Asterisk does the least it can and our own code is the
largest share of the figures (the worst case for our path).

Latency = from the request to "both legs in the mixing bridge":

- our path: POST /calls to the control API → ari_app originates the registrar's leg; when he
  answers, the patient's leg and the bridge; when the patient answers, both join the bridge
  → the "talking" event on the control API's event stream (what the browser waits for);
- baseline: POST /bridges, POST /channels (leg A), wait for its StasisStart, addChannel, POST
  /channels (leg B), StasisStart, addChannel returns — from a bare client of our ARI module
  (its event filter: StasisStart only).

Rounds alternate between the two paths; each round places `--calls` calls at once and hangs
them all up; the next starts when Asterisk has no channel left and the call log has written
everything (neither path pays for the other's tail). The first round of each is a warm-up at
full size (connection pools, codec and dialplan caches), not counted.
ari_app runs in its own process (with its call-log process), as in production; the clients
of both paths run in this one. CPU per process is counted from a round's first request to its
last call bridged. Asterisk is the local chroot, started for the run on a temporary database
(it must not be running already), and stopped at the end whatever happens; so are the phones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.app import Options, run  # noqa: E402
from ari_app.client import AriClient, wait_connected  # noqa: E402
from ari_app.events import Event, StasisStart  # noqa: E402
from asterisk_conf import apply, runtime  # noqa: E402
from clinic.config import Config  # noqa: E402
from clinic.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from clinic.models import ROLE_ADMIN, ClinicSettings, User  # noqa: E402
from clinic.security import hash_password, sip_md5_cred  # noqa: E402
from tests.sip_phone import BaresipPhone, PhoneSpec, make_tone_wav  # noqa: E402

LOOP = "Local/answer@clinic-loopback/n"
DEADLINE = 20.0  # seconds for one call to be bridged before it counts as a failure
PHONES_SIP, PHONES_CTRL, PHONES_RTP = 5300, 4450, (22000, 22999)  # the registrars' phones
PSTN_SIP, PSTN_CTRL, PSTN_RTP = 5320, 4451, (23000, 23999)  # the telephone network behind the trunk
PSTN_NUMBER = "+79160000000"


@dataclass(frozen=True)
class Legs:
    """What both legs of a call are, on both paths."""

    kind: str  # local | sip
    registrar_endpoint: str  # ari_app's template ({sip_id})
    number_endpoint: str  # ari_app's template ({number})

    def number(self, i: int) -> str:
        # baresip answers only its account's number: every patient is that one phone line
        return PSTN_NUMBER if self.kind == "sip" else f"+7916000{i:04d}"

    def baseline(self, i: int) -> tuple[str, str]:
        if self.kind == "local":
            return LOOP, LOOP
        return f"PJSIP/{sip_id(i)}", self.number_endpoint.format(number=self.number(i))


LEGS = {
    "local": Legs("local", LOOP, LOOP),
    # production's own endpoints: the registrar's registered SIP phone, the patient through the trunk
    "sip": Legs("sip", "PJSIP/{sip_id}", "PJSIP/{number}@trunk"),
}


def sip_id(i: int) -> str:
    return f"bench{3000 + i}"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def setup(workdir: Path, users: int, legs: Legs) -> Config:
    os.environ.update(
        {
            "MIS_DATA_DIR": str(workdir),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "MIS_PBX_MODE": "local",
            "MIS_CONTROL_URL": "http://127.0.0.1:0",
        }
    )
    for var in ("MIS_ASTERISK_CONF_DIR", "MIS_ARI_URL"):
        os.environ.pop(var, None)
    config = Config.from_env()
    migrate(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    with transaction(sessions) as s:
        s.add(
            ClinicSettings(sip_domain="127.0.0.1", sip_port=5060, trunk_host="127.0.0.1", trunk_port=PSTN_SIP)
        )
        s.add(User(login="bench-admin", password_hash=hash_password("x" * 12), role=ROLE_ADMIN))
        for i in range(users):
            s.add(
                User(
                    login=f"bench{i}",
                    password_hash="x",
                    full_name=f"Регистратор {i}",
                    extension=str(3000 + i),
                    sip_id=sip_id(i),
                    sip_md5_cred=sip_md5_cred(sip_id(i), f"pw-{i}"),
                )
            )
    written = apply.apply_from_db(config, sessions, None, reload=False)
    if not written.ok:
        raise SystemExit(written.message)
    return config


class OurPath:
    """Click-to-call through the control API; "bridged" = the talking event on /events."""

    def __init__(self, url: str, token: str, user_ids: list[int], legs: Legs) -> None:
        # a lean asyncio client (aiohttp), so the client's own overhead stays out of the figures
        self.url = url
        self.http = aiohttp.ClientSession(
            headers={"X-Control-Token": token},
            timeout=aiohttp.ClientTimeout(total=DEADLINE),
            connector=aiohttp.TCPConnector(limit=200),
        )
        self.user_ids = user_ids
        self.legs = legs
        self.seen: dict[str, dict[str, float]] = {}  # uid -> {state: time}
        self.changed: dict[str, asyncio.Event] = {}  # uid -> set on each of its events
        self.ready = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        self.marks: dict[str, dict[str, float]] = {}  # uid -> ari_app's own step times
        self.first_leg: list[float] = []  # ms from the request to the registrar's leg up

    def take_marks(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for marks in self.marks.values():
            for name, ms in marks.items():
                out.setdefault(name, []).append(ms)
        self.marks = {}
        return out

    async def start(self) -> None:
        self.reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), 10)

    async def _read(self) -> None:
        # a lean reader, like the baseline's event filter: whole chunks split into events, and
        # only the states the figures need are decoded
        async with self.http.get(
            self.url + "/events", params={"user": "all"}, timeout=aiohttp.ClientTimeout(total=None)
        ) as resp:
            pending = b""
            async for chunk in resp.content.iter_any():
                now = time.perf_counter()
                pending += chunk
                *events, pending = pending.split(b"\n\n")
                for raw in events:
                    self._on_event(raw.decode(), now)

    def _on_event(self, raw: str, now: float) -> None:
        kind, _, data = raw.partition("\ndata: ")
        if kind == "event: hello":
            self.ready.set()
        elif kind == "event: call" and '"state": "dialing"' not in data:
            call = json.loads(data)
            if call["state"] == "talking":
                self.marks[call["uid"]] = call.get("marks") or {}
            # wake only that call's waiter: a shared condition woke all 50 per event and the
            # reader itself fell behind (inflating the timestamps)
            self.seen.setdefault(call["uid"], {}).setdefault(call["state"], now)
            self.changed.setdefault(call["uid"], asyncio.Event()).set()

    async def _wait(self, uid: str, state: str) -> float | None:
        deadline = time.monotonic() + DEADLINE
        while state not in self.seen.get(uid, {}) and "ended" not in self.seen.get(uid, {}):
            event = self.changed.setdefault(uid, asyncio.Event())
            event.clear()
            if state in self.seen.get(uid, {}) or "ended" in self.seen.get(uid, {}):
                break
            try:
                await asyncio.wait_for(event.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return None
        return self.seen[uid].get(state)

    async def one(self, i: int) -> tuple[float | None, str | None]:
        t0 = time.perf_counter()
        try:
            async with self.http.post(
                self.url + "/calls",
                json={"target": self.legs.number(i)},
                headers={"X-Actor-Id": str(self.user_ids[i])},
            ) as resp:
                status, body = resp.status, await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            print(f"our path: call {i}: {exc!r}", file=sys.stderr)
            return None, None
        if status != 201:
            print(f"our path: call {i}: {status} {body}", file=sys.stderr)
            return None, None
        uid = body["uid"]
        t1 = await self._wait(uid, "talking")
        up = self.seen.get(uid, {}).get("calling")  # the registrar answered
        if t1 is not None and up is not None:
            self.first_leg.append((up - t0) * 1000)
        return (None if t1 is None else (t1 - t0) * 1000), uid

    async def round(self, n: int, meter: CpuMeter) -> tuple[list[float], int]:
        with meter.during("ours"):
            results = await asyncio.gather(*(self.one(i) for i in range(n)))
        latencies = [ms for ms, _ in results if ms is not None]
        for i, (_, uid) in enumerate(results):
            if uid:
                async with self.http.post(
                    f"{self.url}/calls/{uid}/hangup", headers={"X-Actor-Id": str(self.user_ids[i])}
                ) as resp:
                    await resp.read()
        for _, uid in results:
            if uid:
                await self._wait(uid, "ended")
        return latencies, n - len(latencies)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.http.close()


class Direct:
    """The same originate + bridge straight to ARI, under its own Stasis app."""

    def __init__(self, config: Config, legs: Legs) -> None:
        pbx = config.pbx
        self.legs = legs
        self.ari = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, "bench-direct")
        self.started: dict[str, asyncio.Future[float]] = {}
        self.first_leg: list[float] = []  # ms from the first request to the registrar's leg up
        self.reader: asyncio.Task[None] | None = None
        self.seq = 0

    async def start(self) -> None:
        self.reader = asyncio.create_task(self.ari.run_events(self._on))
        if not await wait_connected(self.ari, 10):
            raise SystemExit("the baseline's ARI events socket did not connect")
        await self.ari.set_event_filter(("StasisStart",))  # a lean client reads only what it needs

    async def _on(self, event: Event) -> None:
        if isinstance(event, StasisStart):
            fut = self.started.get(event.channel.id)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())

    async def _leg(self, endpoint: str, channel_id: str, originator: str | None = None) -> None:
        fut = self.started[channel_id] = asyncio.get_running_loop().create_future()
        await self.ari.originate(endpoint, channel_id=channel_id, app_args="bench", originator=originator)
        await asyncio.wait_for(fut, DEADLINE)

    async def one(self, i: int, tag: str) -> float | None:
        registrar, patient = self.legs.baseline(i)
        t0 = time.perf_counter()
        try:
            await self.ari.create_bridge(f"bb-{tag}")
            await self._leg(registrar, f"ba-{tag}")
            up = time.perf_counter()
            await self.ari.add_to_bridge(f"bb-{tag}", f"ba-{tag}")
            await self._leg(patient, f"bp-{tag}", originator=f"ba-{tag}")
            await self.ari.add_to_bridge(f"bb-{tag}", f"bp-{tag}")
        except Exception as exc:
            print(f"baseline: call {tag}: {exc!r} {exc.__cause__!r}", file=sys.stderr)
            return None
        self.first_leg.append((up - t0) * 1000)
        return (time.perf_counter() - t0) * 1000

    async def round(self, n: int, meter: CpuMeter) -> tuple[list[float], int]:
        self.seq += 1
        tags = [f"{uuid.uuid4().hex[:10]}-{i}" for i in range(n)]
        with meter.during("direct"):
            results = await asyncio.gather(*(self.one(i, t) for i, t in enumerate(tags)))
        for tag in tags:
            for chan in (f"ba-{tag}", f"bp-{tag}"):
                with contextlib.suppress(Exception):
                    await self.ari.hangup(chan)
            with contextlib.suppress(Exception):
                await self.ari.destroy_bridge(f"bb-{tag}")
        latencies = [ms for ms in results if ms is not None]
        return latencies, n - len(latencies)

    async def close(self) -> None:
        await self.ari.close()
        if self.reader is not None:
            self.reader.cancel()


async def unsaved_rows(url: str) -> int:
    """Call-log rows ari_app has not written yet (its /health)."""
    async with aiohttp.ClientSession() as http, http.get(url + "/health") as resp:
        return int((await resp.json())["call_log_unsaved"])


async def wait_quiet(ari: AriClient, url: str, timeout: float = 20.0) -> None:
    """Until the previous round has left no channel in Asterisk and no unwritten row in the
    call log, so neither path's round pays for the other's tail."""
    deadline = time.monotonic() + timeout
    while True:
        if not await unsaved_rows(url) and not await ari.channels():
            return
        if time.monotonic() > deadline:
            raise SystemExit("the previous round did not end (channels or call-log writes left)")
        await asyncio.sleep(0.05)  # poll with a deadline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, all its threads, to the nanosecond (Linux schedstat:
    /proc/<pid>/stat counts in 10 ms ticks, too coarse for a 100 ms window)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of a process and its child processes (ari_app and its call-log process)."""
    out = {pid: cpu_seconds(pid)}
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out[int(child)] = cpu_seconds(int(child))
    return out


def serve_ari(port: int, kind: str) -> None:
    """The child process: ari_app with the legs' endpoints (env set by the parent)."""
    legs = LEGS[kind]
    options = Options(
        control_url=f"http://127.0.0.1:{port}",
        registrar_endpoint=legs.registrar_endpoint,
        number_endpoint=legs.number_endpoint,
    )
    run(Config.from_env(), options)  # as `mis-telephony ari` does


def wait_healthy(url: str, child: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.is_alive():
            raise SystemExit("ari_app exited before it was ready")
        try:
            health = httpx.get(f"{url}/health", timeout=1, trust_env=False).json()
            if health.get("ari_connected") and health.get("call_log_ready"):
                return  # the call-log process has started too: its start-up CPU is not counted
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # poll with a deadline
    raise SystemExit("ari_app did not connect to ARI")


class CpuMeter:
    """CPU seconds per process while each path's calls are being set up (from the first
    request until the last call is bridged): Asterisk, the phones, this process (the
    clients), ari_app's event loop, its call-log process."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.spent: dict[str, dict[str, float]] = {}

    def _now(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        out["clients"] = cpu_seconds(os.getpid())
        ari = self.pids["ari_app"]
        out["call-log"] = sum(v for p, v in tree_cpu(ari).items() if p != ari)
        return out

    @contextlib.contextmanager
    def during(self, path: str) -> Any:
        before = self._now()
        yield
        after = self._now()
        spent = self.spent.setdefault(path, {})
        for name, value in after.items():
            spent[name] = spent.get(name, 0.0) + value - before[name]


async def measure(
    config: Config, url: str, legs: Legs, calls: int, rounds: int, meter: CpuMeter
) -> dict[str, Any]:
    sessions = make_session_factory(make_engine(config.database_url))
    with sessions() as s:
        user_ids = [u.id for u in s.query(User).filter(User.extension.isnot(None)).order_by(User.id)]
    ours = OurPath(url, config.pbx.control_token, user_ids, legs)
    direct = Direct(config, legs)
    await ours.start()
    await direct.start()
    await asyncio.wait_for(direct.ari.rest_ready.wait(), 10)
    out: dict[str, Any] = {"ours": [], "direct": [], "ours_fail": 0, "direct_fail": 0, "marks": {}}
    out["transport"] = direct.ari.rest_transport  # ari_app's own client chooses the same way
    try:
        warm_up = CpuMeter(meter.pids)
        for _ in range(1):  # warm-up at full size: connection pools, dialplan and codec caches
            await ours.round(calls, warm_up)
            await wait_quiet(direct.ari, url)
            await direct.round(calls, warm_up)
            await wait_quiet(direct.ari, url)
        ours.first_leg, direct.first_leg = [], []
        for _ in range(rounds):
            lat, fail = await ours.round(calls, meter)
            out["ours"] += lat
            out["ours_fail"] += fail
            for name, values in ours.take_marks().items():
                out["marks"].setdefault(name, []).extend(values)
            await wait_quiet(direct.ari, url)
            lat, fail = await direct.round(calls, meter)
            out["direct"] += lat
            out["direct_fail"] += fail
            await wait_quiet(direct.ari, url)
    finally:
        await ours.close()
        await direct.close()
    out["first_leg"] = {"ours": ours.first_leg, "direct": direct.first_leg}
    return out


def start_phones(workdir: Path, calls: int, users: int) -> list[BaresipPhone]:
    """Real SIP phones (baresip, auto-answer): the registrars' phones as one process with an
    account each, and the telephone network behind the trunk as another."""
    tone = make_tone_wav(workdir / "tone8k.wav")
    most = 2 * calls + 8
    first, *rest = (
        PhoneSpec(sip_id(i), f"pw-{i}", PHONES_SIP, PHONES_CTRL, *PHONES_RTP) for i in range(users)
    )
    bank = BaresipPhone(workdir / "phones", replace(first, max_calls=most), tone, rest)
    pstn_spec = PhoneSpec(PSTN_NUMBER, "unused", PSTN_SIP, PSTN_CTRL, *PSTN_RTP, regint=0, max_calls=most)
    phones = [bank.start()]
    phones.append(BaresipPhone(workdir / "pstn", pstn_spec, tone).start())
    return phones


def wait_registered(config: Config, users: int, timeout: float = 30.0) -> None:
    pbx = config.pbx
    want = {sip_id(i) for i in range(users)}
    deadline = time.monotonic() + timeout
    while True:
        endpoints = httpx.get(
            f"{pbx.ari_url.rstrip('/')}/endpoints/PJSIP", auth=(pbx.ari_user, pbx.ari_password), timeout=5
        ).json()
        online = {e["resource"] for e in endpoints if e.get("state") == "online"}
        if want <= online:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"phones not registered: {sorted(want - online)[:5]}...")
        time.sleep(0.1)  # poll with a deadline


def run_legs(kind: str, calls: int, rounds: int) -> float:
    """One whole run with legs `kind` (its own Asterisk, phones and ari_app); prints its
    figures and returns the p95 ratio ours/baseline (NaN if a path failed a call)."""
    legs = LEGS[kind]
    users = max(calls, 5)
    phones: list[BaresipPhone] = []
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
        config = setup(Path(tmp), users, legs)
        runtime.provision(config.pbx, say=lambda _m: None)
        try:
            started = runtime.start(config.pbx, config.data_dir)
        except runtime.PbxRuntimeError as exc:
            raise SystemExit(f"bench/calls.py: {exc}") from None
        child = None
        try:
            pids = {"asterisk": started.pid or 0}
            if legs.kind == "sip":
                phones = start_phones(Path(tmp), calls, users)
                wait_registered(config, users)
                pids.update({f"phones{n}": p.proc.pid for n, p in enumerate(phones) if p.proc})
            # ari_app in its own process, as in production (`mis-telephony ari`)
            port = free_port()
            child = multiprocessing.get_context("spawn").Process(target=serve_ari, args=(port, legs.kind))
            child.start()
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, child)
            meter = CpuMeter({**pids, "ari_app": child.pid or 0})
            result = asyncio.run(measure(config, url, legs, calls, rounds, meter))
        finally:
            try:
                if child is not None and child.is_alive():
                    child.terminate()  # SIGTERM: serve() stops cleanly
                    child.join(10)
                for phone in phones:
                    phone.stop()
            finally:
                runtime.stop(config.pbx, config.data_dir)  # never leave Asterisk behind
    version = runtime.asterisk_version_in(config.pbx.chroot)
    report(result, meter, legs, calls, rounds, f"{version}; Asterisk start {started.seconds:.2f} s")
    if result["ours_fail"] or result["direct_fail"]:
        return float("nan")
    return percentile(result["ours"], 95) / percentile(result["direct"], 95)


def report(result: dict[str, Any], meter: CpuMeter, legs: Legs, calls: int, rounds: int, where: str) -> None:
    rows = [
        ("our control API path", result["ours"], result["ours_fail"]),
        ("direct ARI baseline", result["direct"], result["direct_fail"]),
    ]
    shape = "Local channels"
    if legs.kind == "sip":
        shape = "real SIP phones (baresip), the patient through the trunk"
    print(f"\ncalls.py: {calls} concurrent click-to-call sessions x {rounds} rounds, {shape}; {where}")
    moves = " (bridge moves over HTTP)" if result["transport"] == "websocket" else ""
    print(f"ARI REST over {result['transport']}{moves} on both paths")
    print(f"{'':24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'calls':>7}{'failures':>10}")
    for name, lat, fail in rows:
        worst = max(lat, default=float("nan"))
        p50, p95 = percentile(lat, 50), percentile(lat, 95)
        print(f"{name:24}{p50:9.1f}{p95:9.1f}{worst:9.1f}{len(lat):7d}{fail:10d}")
    legs_up = result["first_leg"]
    print(
        "the registrar's leg up (answered), ms from the request, p50/p95: "
        f"ours {percentile(legs_up['ours'], 50):.0f}/{percentile(legs_up['ours'], 95):.0f}, "
        f"baseline {percentile(legs_up['direct'], 50):.0f}/{percentile(legs_up['direct'], 95):.0f}"
    )
    steps = ", ".join(
        f"{name} {percentile(v, 50):.0f}"
        for name, v in sorted(result["marks"].items(), key=lambda kv: percentile(kv[1], 50))
    )
    print(f"inside ari_app, ms from the request reaching it (p50): {steps}")
    counted = rounds * calls
    for path, label in (("ours", "our path"), ("direct", "baseline")):
        spent = meter.spent.get(path, {})
        parts = ", ".join(f"{name} {value / counted * 1000:.2f}" for name, value in spent.items())
        print(f"CPU ms a call until all are bridged, {label}: {parts}")
    ratio = percentile(result["ours"], 95) / percentile(result["direct"], 95)
    ratio50 = percentile(result["ours"], 50) / percentile(result["direct"], 50)
    print(f"ratio p95 ours/baseline ({legs.kind}): {ratio:.2f} · p50 ratio {ratio50:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--legs",
        choices=[*sorted(LEGS), "both"],
        default="both",
        help="SIP phones, Local channels, or both runs one after the other (the default)",
    )
    args = parser.parse_args()
    kinds = ["sip", "local"] if args.legs == "both" else [args.legs]
    ratios = {kind: run_legs(kind, args.calls, args.rounds) for kind in kinds}
    print()
    if "sip" in ratios:
        met = "met" if ratios["sip"] <= 1.2 else "NOT met"
        print(f"p95 ratio with real SIP legs: {ratios['sip']:.2f} (target ≤ 1.20: {met})")
    if "local" in ratios:
        print(f"Local-channel ratio (both legs Local channels, no SIP): {ratios['local']:.2f}")
    return 1 if any(math.isnan(r) for r in ratios.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
