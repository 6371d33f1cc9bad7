"""Benchmark: a mailing of 10,000 personalized SMS to the sms.ru emulator with 50 ms latency
per request, through our path (ledger rows first, batches of 100 per-number texts, 8
requests in flight, outcomes written back) and through a baseline that sends one request
per message in sequence, in the same run.

    .venv/bin/python bench/sms_mailing.py [--messages 10000] [--baseline 200] [--latency 0.05]

The baseline is timed on its first --baseline messages (0 = all of them): one request per
message costs at least the latency each, so the full 10,000 would take over 8 minutes and
tell nothing more. Its rate is messages per second all the same. The ideal is the time of
the requests our path needs, if nothing but latency counted: ceil(N / 100) ÷ concurrency ×
latency. Peak RSS is this process's (our path and the baseline client; the emulator runs in
its own process).
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clinic.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from clinic.models import Appointment, ClinicSettings, Employee, Patient, SmsTemplate, User  # noqa: E402
from clinic.sms import ledger, mailings  # noqa: E402
from clinic.smsru import SmsRuClient  # noqa: E402

API_ID = "BENCH-0000-1111-2222-333344445555"
CONCURRENCY = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(latency: float, n: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "emulators.smsru", "--port", str(port), "--api-id", API_ID,
            "--latency", str(latency), "--threads", str(CONCURRENCY * 2), "--balance", "100000000",
            "--daily-limit", str(n * 4), "--per-number-limit", "1000",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    with httpx.Client(trust_env=False) as http:
        while time.monotonic() < deadline:
            try:
                http.get(f"{url}/_emulator/config", timeout=1)
                return proc, url
            except httpx.HTTPError:
                time.sleep(0.05)
    proc.kill()
    raise SystemExit("the emulator did not start")


def seed(factory, n: int) -> int:  # type: ignore[no-untyped-def]
    """n patients booked the day after tomorrow, and a «Рассылка СМС» document filled from them."""
    day = datetime.combine(date.today() + timedelta(days=2), datetime.min.time()) + timedelta(hours=8)
    with transaction(factory) as s:
        s.add(
            ClinicSettings(
                name="Клиника", sms_api_key=API_ID, sms_sender="Klinika", sms_quiet_from=0, sms_quiet_to=0
            )
        )
        doctor = Employee(last_name="Смирнов", first_name="Андрей", patronymic="Викторович")
        template = SmsTemplate(
            name="Напоминание",
            is_default=True,
            body="{patient_first_patronymic}, ждём вас {date} в {time}, врач {doctor}. {clinic}",
        )
        user = User(login="bench", password_hash="x", role="admin")
        s.add_all([doctor, template, user])
        s.flush()
        patients = [
            Patient(
                last_name=f"Пациент{i}", first_name="Анна", patronymic=f"Отчество{i}", phone=f"+7903{i:07d}"
            )
            for i in range(n)
        ]
        s.add_all(patients)
        s.flush()
        s.add_all(
            Appointment(patient_id=p.id, doctor_id=doctor.id, starts_at=day + timedelta(minutes=(i % 600)))
            for i, p in enumerate(patients)
        )
        s.flush()
        mailing = mailings.save_header(
            s,
            None,
            {
                "period_from": day.date().isoformat(),
                "period_to": day.date().isoformat(),
                "template_id": template.id,
            },
            user,
            date.today(),
        )
        mailings.fill_from_appointments(s, mailing)
        return mailing.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=200, help="messages timed for the baseline (0: all)")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    n = args.messages
    workdir = Path(tempfile.mkdtemp(prefix="sms-bench-"))
    emulator, url = start_emulator(args.latency, n)
    try:
        db_url = f"sqlite:///{workdir / 'bench.db'}"
        migrate(db_url)
        factory = make_session_factory(make_engine(db_url))
        mailing_id = seed(factory, n)

        # -- our path: «Рассылка СМС» → ledger rows → batches of 100, 8 in flight
        t0 = time.perf_counter()
        with transaction(factory) as s:
            mailing = mailings.load(s, mailing_id)
            user = s.query(User).one()
            queued = mailings.start_sending(s, mailing, user, now=datetime.now(UTC)).queued
        t1 = time.perf_counter()
        with SmsRuClient(API_ID, base_url=url, default_sender="Klinika") as client:
            outcome = ledger.dispatch_due(factory, client, api_id=API_ID, concurrency=CONCURRENCY)
        t2 = time.perf_counter()
        assert queued == n and outcome["sent"] == n, (queued, outcome)
        send_s, total_s = t2 - t1, t2 - t0

        # -- baseline: one request per message, in sequence, same texts
        with transaction(factory) as s:
            texts = [
                (p, t)
                for p, t in s.query(ledger.SmsMessage.phone, ledger.SmsMessage.text).order_by(
                    ledger.SmsMessage.id
                )
            ]
        sample = texts if args.baseline <= 0 else texts[: args.baseline]
        with SmsRuClient(API_ID, base_url=url, default_sender="Klinika") as client:
            b0 = time.perf_counter()
            for phone, text in sample:
                client.send(phone, text)
            base_s = time.perf_counter() - b0

        # -- transport floor: the same 100-number batches from a bare client, same concurrency,
        # no ledger: what the emulator itself allows (its per-request work is not free)
        batches = [dict(texts[i : i + 100]) for i in range(0, n, 100)]
        with SmsRuClient(API_ID, base_url=url, default_sender="Klinika") as client:
            f0 = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(client.send_each, batches))
            floor_s = time.perf_counter() - f0

        requests = math.ceil(n / 100)
        ideal_s = requests / CONCURRENCY * args.latency
        ours = n / send_s
        base = len(sample) / base_s
        ideal = n / ideal_s
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"messages: {n}, emulator latency {args.latency * 1000:.0f} ms/request, concurrency {CONCURRENCY}"
        )
        print(f"ours:     {ours:8.0f} SMS/s  send {send_s:.2f} s in {outcome['requests']} requests "
              f"(+ {t1 - t0:.2f} s writing {n} ledger rows; end to end {n / total_s:.0f} SMS/s)")  # fmt: skip
        print(f"baseline: {base:8.1f} SMS/s  one request per message, timed on {len(sample)} messages "
              f"(all {n} would take ≈{n / base:.0f} s)")  # fmt: skip
        print(f"ratio:    {ours / base:8.1f}x  (target ≥ 50x)")
        latency_ms = args.latency * 1000
        print(f"ideal:    {ideal:8.0f} SMS/s  ({requests} requests ÷ {CONCURRENCY} × {latency_ms:.0f} ms = "
              f"{ideal_s:.3f} s); ours takes {send_s / ideal_s:.2f}x the ideal (target ≤ 2x)")  # fmt: skip
        print(f"floor:    {n / floor_s:8.0f} SMS/s  the same {len(batches)} batches, bare client, no ledger: "
              f"{floor_s:.2f} s = {floor_s / ideal_s:.2f}x the ideal (the emulator's own work)")  # fmt: skip
        print(f"peak RSS: {rss_mb:8.1f} MB")
        return 0
    finally:
        emulator.terminate()
        emulator.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
