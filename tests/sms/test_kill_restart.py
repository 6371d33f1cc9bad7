"""A mailing whose worker process is killed mid-send (SIGKILL, for real) and restarted
sends every message at most once; the batch whose reply was lost is marked for the operator.

The emulator holds one sms/send after carrying it out (the SMS "went out", the reply never
comes), so the worker is surely inside that request when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from smsru.support import Sms
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ClinicSettings, SmsMailing, SmsMessage, User
from clinic.sms import mailings

N = 1000  # 10 requests of 100; the worker has 8 in flight, so 2 are still queued at the kill
WAIT = 60.0


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling interval of a condition, not a synchronisation by time
    raise AssertionError(f"timed out waiting for {what}")


def _states(sessions: sessionmaker[Session]) -> Counter[str]:
    with sessions() as s:
        return Counter(
            dict(s.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state)).all())
        )


def _mailing_state(sessions: sessionmaker[Session]) -> str | None:
    with sessions() as s:
        return s.scalar(select(SmsMailing.state))


def _start_worker(config: Config, sms: Sms, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "MIS_DATA_DIR": str(config.data_dir),
        "MIS_SMSRU_URL": sms.url,
        "MIS_SMS_LEASE_S": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_killed_worker_never_resends(
    sessions: sessionmaker[Session],
    config: Config,
    make_sms: Callable[..., Sms],
    clinic: dict[str, int],
    add_patients: Callable[..., list[int]],
    tmp_path: Path,
) -> None:
    sms = make_sms(clock="real")
    day = datetime.combine(date.today() + timedelta(days=2), datetime.min.time()) + timedelta(hours=8)
    add_patients(N, day)
    with transaction(sessions) as s:
        settings = s.scalars(select(ClinicSettings)).one()
        settings.sms_quiet_from = settings.sms_quiet_to = 0
        user = User(login="admin", password_hash="x", role="admin")
        s.add(user)
        s.flush()
        mailing = mailings.save_header(
            s,
            None,
            {
                "period_from": day.date().isoformat(),
                "period_to": day.date().isoformat(),
                "template_id": clinic["template"],
            },
            user,
            date.today(),
        )
        assert mailings.fill_from_appointments(s, mailing) == N
        s.flush()
        s.refresh(mailing)
        mailings.start_sending(s, mailing, user, now=datetime.now().astimezone())
    # every request of the first round is carried out and then held: all 8 sender threads are
    # inside a request whose SMS went out, and the last 200 messages are still queued
    sms.faults({"kind": "timeout", "path": "sms/send", "count": 8, "process": True, "hold": 300})

    log = tmp_path / "worker.log"
    worker = _start_worker(config, sms, log)
    try:
        assert sms.emulator.wait_for_holds(8, WAIT), log.read_text()
        assert worker.poll() is None
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(WAIT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(WAIT)
    at_kill = _states(sessions)
    assert at_kill == Counter({"sending": 800, "queued": 200}), at_kill
    went_out = Counter(m["phone"] for m in sms.messages())
    assert len(went_out) == 800 and max(went_out.values()) == 1  # the held batches were carried out

    restarted = _start_worker(config, sms, log)
    try:
        wait_until(
            lambda: _states(sessions)["queued"] + _states(sessions)["sending"] == 0,
            what="the restarted worker",
        )
        wait_until(lambda: _mailing_state(sessions) == "sent", what="the document to be «Отправлено»")
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(WAIT)
    final = _states(sessions)
    assert final == Counter({"sent": 200, "unknown": 800}), final
    went_out = Counter(m["phone"] for m in sms.messages())
    assert len(went_out) == N and max(went_out.values()) == 1, "a message was sent twice"
    with sessions() as s:
        unknown = s.scalars(select(SmsMessage).where(SmsMessage.state == "unknown")).all()
        assert all("не переотправляется" in row.note for row in unknown)
        assert all(row.attempts == 1 for row in unknown)
