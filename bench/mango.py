"""Benchmark: the Mango Office robot, in one run.

1. Export: 10,000 next-day appointments (distinct mobile phones) through our real path —
   claim row committed, signed `task/add`, state committed, exchange-log row — to the Mango
   emulator (its own process) enforcing the same task/add rate we are configured for. The
   bound is what the rate alone allows: (requests − 1) ÷ rate, the first request going out
   at once. Pass: elapsed ≤ 1.1 × bound and the emulator refused nothing as over-rate.
   Mango's real limit is 5/s (10,000 would take 33 min), so the rate is a parameter:
   50/s by default (10× Mango's, bound 200 s), where our per-task work and the emulator's
   have to fit in 20 ms with 4 requests in flight.
2. UpdateStatus: concurrent POSTs to our hooks listener (waitress, 8 threads, as
   `mis-telephony hooks` serves it), every one a real change (status alternates 1/2) with
   its durable commit (SQLite WAL, synchronous=FULL) and exchange-log row; baseline: a bare
   Flask endpoint that parses the same JSON, on the same server with the same threads.
   Concurrent callbacks share one transaction and one commit (clinic/group_commit.py).
3. When PostgreSQL answers on 127.0.0.1:5432 (user postgres, no password), 1 and 2 again
   on a database of our own (created and dropped here), the two ratios printed side by side.

    .venv/bin/python bench/mango.py [--appointments 10000] [--rate 50] [--callbacks 3000]
                                    [--clients 8] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from clinic.clock import clinic_now  # noqa: E402
from clinic.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from clinic.models import (  # noqa: E402
    Appointment,
    Employee,
    ExternalSystem,
    Patient,
    RobotTask,
    Service,
)
from clinic.robot.export import export_day  # noqa: E402

KEY = "bench-vpbx-key"
SALT = "bench-vpbx-salt"
SECRET = "bench-webhook-secret-0123456789"
CAMPAIGN = 56919
THREADS = 8
ROUND = 500  # callbacks per interleaved round, ours then the baseline

BASELINE_APP = """
import sys, json
from flask import Flask, request, jsonify
from waitress import serve
app = Flask("baseline")
@app.post("/MangoOffice/UpdateStatus")
def update():
    data = json.loads(request.get_data())
    return jsonify(result="ok", id=str(data["id"]), status=int(data["status"]))
print("ready", flush=True)
serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]), _quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            threading.Event().wait(0.05)  # poll interval while a process starts
    raise SystemExit(f"{url} did not answer")


def populate(factory, n: int) -> None:  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        day = clinic_now(session).date() + timedelta(days=1)
        doctor = Employee(last_name="Терапевтов", first_name="Олег", patronymic="Ильич", specialty="Терапевт")
        service = Service(code="B01", name="Приём терапевта", duration_min=5, price=0)
        session.add_all([doctor, service])
        session.flush()
        patients = [
            Patient(last_name=f"Пациент{i}", first_name="Иван", patronymic="", phone=f"+7916{i:07d}")
            for i in range(n)
        ]
        session.add_all(patients)
        session.flush()
        start = datetime.combine(day, dtime(7, 0))
        session.add_all(
            Appointment(
                patient_id=p.id,
                doctor_id=doctor.id,
                service_id=service.id,
                starts_at=start + timedelta(seconds=5 * i),
                duration_min=5,
                extra_info="",
                cancel_reason="",
                confirmation_status="",
                confirmation_source="",
            )
            for i, p in enumerate(patients)
        )


def bench_export(factory, emulator_url: str, n: int, rate: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        system = ExternalSystem(
            api_key=KEY,
            api_salt=SALT,
            campaign_id=CAMPAIGN,
            base_url=emulator_url + "/vpbx/",
            field_names="",
            field_ids="",
            webhook_secret=SECRET,
            webhook_ips="",
            last_check_message="",
            rate_per_s=rate,
        )
        session.add(system)
        session.flush()
        system_id = system.id
        day = clinic_now(session).date() + timedelta(days=1)
    started = time.perf_counter()
    report = export_day(factory, system_id, day)
    elapsed = time.perf_counter() - started
    requests_log = httpx.get(emulator_url + "/_emulator/requests", timeout=60).json()["requests"]
    refused = sum(1 for r in requests_log if r["http_status"] in (429, 503))
    sent_requests = len(requests_log)
    with factory() as session:
        tasks = session.scalar(select(func.count(RobotTask.id)).where(RobotTask.task_id.is_not(None)))
    bound = (sent_requests - 1) / rate
    # the busiest second at the emulator's end, by its own clock
    stamps = sorted(r["at"] for r in requests_log)
    peak, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    return {
        "found": report.found,
        "sent": report.sent,
        "tasks_with_id": tasks or 0,
        "requests": sent_requests,
        "refused": refused,
        "elapsed": elapsed,
        "bound": bound,
        "ratio": elapsed / bound,
        "achieved_rate": sent_requests / elapsed,
        "peak_per_s": peak,
    }


def load(url: str, bodies: list[dict[str, object]], clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [bodies[i::clients] for i in range(clients)]
    errors = 0

    def worker(chunk: list[dict[str, object]]) -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        with httpx.Client(timeout=30) as client:
            for body in chunk:
                t0 = time.perf_counter()
                reply = client.post(url, json=body, headers={"X-Webhook-Token": SECRET})
                mine.append(time.perf_counter() - t0)
                if reply.status_code != 200:
                    bad += 1
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, chunks))
    elapsed = time.perf_counter() - started
    return {"requests": len(bodies), "errors": errors, "elapsed": elapsed, "latencies": sorted(latencies)}


def merged(runs: list[dict[str, Any]]) -> dict[str, float]:
    latencies = sorted(x for run in runs for x in run["latencies"])
    requests = sum(run["requests"] for run in runs)
    return {
        "requests": requests,
        "errors": sum(run["errors"] for run in runs),
        "rps": requests / sum(run["elapsed"] for run in runs),
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
    }


def bench_callbacks(factory, env: dict[str, str], count: int, clients: int) -> tuple[dict, dict, str]:  # type: ignore[no-untyped-def]
    with factory() as session:
        refs = list(session.scalars(select(RobotTask.ref).order_by(RobotTask.id)).all())
        durability = _durability(session, env["DATABASE_URL"])
    # every callback changes its appointment: each ref gets 1, then 2, then 1 ...
    bodies = [{"id": refs[i % len(refs)], "status": 1 + (i // len(refs)) % 2} for i in range(count)]

    ours_port, base_port = free_port(), free_port()
    ours = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "hooks", "--port", str(ours_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = subprocess.Popen(
        [sys.executable, "-c", BASELINE_APP, str(base_port), str(THREADS)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{ours_port}/healthz", ours)
        wait_http(f"http://127.0.0.1:{base_port}/MangoOffice/UpdateStatus", base)
        url_ours = f"http://127.0.0.1:{ours_port}/MangoOffice/UpdateStatus"
        url_base = f"http://127.0.0.1:{base_port}/MangoOffice/UpdateStatus"
        load(url_ours, bodies[: min(100, count)], clients)  # warm-up, both sides
        load(url_base, bodies[: min(100, count)], clients)
        # warm-up flipped statuses once; start from a state where each body is a change
        bodies = [
            {**b, "status": 3 - int(b["status"])} if i < min(100, count) else b for i, b in enumerate(bodies)
        ]
        # interleaved rounds, so a burst of other work on the machine weighs on both sides
        rounds = [bodies[i : i + ROUND] for i in range(0, len(bodies), ROUND)]
        ours_runs, base_runs = [], []
        for chunk in rounds:
            ours_runs.append(load(url_ours, chunk, clients))
            base_runs.append(load(url_base, chunk, clients))
        ours_result, base_result = merged(ours_runs), merged(base_runs)
    finally:
        for proc in (ours, base):
            proc.terminate()
            proc.wait(timeout=10)
    return ours_result, base_result, durability


def _durability(session, url: str) -> str:  # type: ignore[no-untyped-def]
    if url.startswith("sqlite"):
        mode = session.execute(text("PRAGMA journal_mode")).scalar()
        sync = session.execute(text("PRAGMA synchronous")).scalar()
        return f"journal_mode={mode}, synchronous={sync} (2 = FULL)"
    sync = session.execute(text("SHOW synchronous_commit")).scalar()
    fsync = session.execute(text("SHOW fsync")).scalar()
    return f"PostgreSQL synchronous_commit={sync}, fsync={fsync}"


def start_emulator(rate: int, n: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "emulators.mango", "--port", str(port),
            "--rate-limit", str(rate), "--task-add-rate", str(rate),
            "--max-tasks", str(n * 2), "--threads", str(THREADS),
        ],
        cwd=ROOT,
        env={**os.environ, "MANGO_EMULATOR_KEY": KEY, "MANGO_EMULATOR_SALT": SALT},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_emulator/health", proc)
    return proc, url


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_url() -> str | None:
    """A fresh database of our own on the local PostgreSQL, or None when none is reachable."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2) as conn:
            name = f"bench_mango_{os.getpid()}"
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 — any failure means: no PostgreSQL figure
        print(f"PostgreSQL on 127.0.0.1:5432 not used: {exc.__class__.__name__}")
        return None
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_on(url: str, tmp: Path, args: argparse.Namespace) -> tuple[bool, float]:
    """Both benchmarks on one database; whether they passed, and the UpdateStatus ratio."""
    env = {**os.environ, "DATABASE_URL": url, "MIS_DATA_DIR": str(tmp)}
    os.environ.update({"DATABASE_URL": url, "MIS_DATA_DIR": str(tmp)})
    emulator = None
    engine = None
    try:
        migrate(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        populate(factory, args.appointments)
        emulator, emulator_url = start_emulator(args.rate, args.appointments)

        e = bench_export(factory, emulator_url, args.appointments, args.rate)
        ok_export = e["ratio"] <= 1.1 and e["refused"] == 0 and e["sent"] == args.appointments
        print(f"== {url.split(':', 1)[0]}")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"export of {args.appointments} appointments at {args.rate} task/add per second")
        print(
            f"  found {e['found']:.0f}, sent {e['sent']:.0f}, Mango task ids stored {e['tasks_with_id']:.0f}"
        )
        print(f"  requests {e['requests']:.0f} (lookup + task/add), over-rate refusals: {e['refused']:.0f}")
        print(f"  elapsed {e['elapsed']:.2f} s, rate-limit bound {e['bound']:.2f} s, ratio {e['ratio']:.3f}")
        print(f"  achieved {e['achieved_rate']:.1f} req/s, busiest second at Mango: {e['peak_per_s']:.0f}")

        ours, base, durability = bench_callbacks(factory, env, args.callbacks, args.clients)
        print(f"UpdateStatus: {args.callbacks} callbacks, {args.clients} clients, waitress {THREADS} threads")
        print(f"  durability: {durability}; group commit (clinic/group_commit.py)")
        print(
            f"  ours:     {ours['rps']:.0f} req/s, p50 {ours['p50_ms']:.1f} ms, p95 {ours['p95_ms']:.1f} ms"
        )
        print(f"            non-200 answers: {ours['errors']:.0f}")
        print(
            f"  baseline: {base['rps']:.0f} req/s, p50 {base['p50_ms']:.1f} ms, p95 {base['p95_ms']:.1f} ms"
        )
        rps_ratio, p95_ratio = ours["rps"] / base["rps"], ours["p95_ms"] / base["p95_ms"]
        print(f"  ratio ours/baseline: throughput {rps_ratio:.2f}, p95 {p95_ratio:.2f}", flush=True)
        return ok_export and ours["errors"] == 0, rps_ratio
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)
        if engine is not None:
            engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=50, help="task/add per second, ours and the emulator's")
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-mango-"))
    try:
        ok, sqlite_ratio = run_on(f"sqlite:///{tmp / 'bench.db'}", tmp, args)
        pg_url = None if args.no_postgres else postgres_url()
        pg_ratio = None
        if pg_url is not None:
            try:
                pg_ok, pg_ratio = run_on(pg_url, tmp, args)
                ok = ok and pg_ok
            finally:
                drop_postgres(pg_url)
        pg_text = "not measured" if pg_ratio is None else f"{pg_ratio:.2f}"
        print(
            f"UpdateStatus throughput ours/baseline: SQLite {sqlite_ratio:.2f} (target ≥ 0.5),"
            f" PostgreSQL {pg_text}"
        )
        print("PASS" if ok else "FAIL", flush=True)
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
