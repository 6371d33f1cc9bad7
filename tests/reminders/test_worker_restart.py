"""The real worker process (`mis-telephony worker`) applying a reminder rule is killed
(SIGKILL) while its requests to sms.ru are in flight, and started again: every patient gets
the reminder at most once; what may have gone out is left «результат неизвестен», what had
not is sent by the restarted worker, and no reminder is planned twice."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from eventskit import wait_until
from sms.test_kill_restart import _start_worker  # the same worker process, started alike
from smsru.support import Sms
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import clinic_now
from clinic.config import Config
from clinic.db import transaction
from clinic.models import Appointment, ClinicSettings, Patient, ReminderJob, SmsMessage

from .conftest import Clinic

pytestmark = pytest.mark.db
N = 500  # 5 requests of 100; 4 in flight (held) at the kill, the 5th still queued
WAIT = 60.0


def _count(sessions: sessionmaker[Session], column: object) -> Counter[str]:
    with sessions() as s:
        return Counter(dict(s.execute(select(column, func.count()).group_by(column)).all()))  # type: ignore[call-overload]


def test_killed_worker_never_sends_a_reminder_twice(
    sessions: sessionmaker[Session],
    config: Config,
    make_sms: Callable[..., Sms],
    clinic: Clinic,
    tmp_path: Path,
) -> None:
    sms = make_sms(clock="real")
    with transaction(sessions) as s:
        settings = s.scalars(select(ClinicSettings)).one()
        settings.sms_quiet_from = settings.sms_quiet_to = 0  # the real clock: any hour
        tomorrow = clinic_now(s).date() + timedelta(days=1)
        first = datetime.combine(tomorrow, time(8))
        for i in range(N):
            p = Patient(last_name=f"Пациент{i}", first_name="Анна", patronymic="", phone=f"+7903{i:07d}")
            s.add(p)
            s.flush()
            s.add(Appointment(patient_id=p.id, doctor_id=clinic.doctor, cabinet_id=clinic.cabinet,
                              service_id=clinic.service, extra_info="", cancel_reason="",
                              confirmation_status="", confirmation_source="",
                              starts_at=first + timedelta(minutes=i)))  # fmt: skip
    clinic.rule(
        offset_value=3, offset_unit="days", active_since=datetime.now().astimezone() - timedelta(days=7)
    )
    # the reminders job's 4 requests are carried out and then held: it is inside them
    sms.faults({"kind": "timeout", "path": "sms/send", "count": 4, "process": True, "hold": 300})

    log = tmp_path / "worker.log"
    worker = _start_worker(config, sms, log)
    try:
        assert sms.emulator.wait_for_holds(4, WAIT), log.read_text()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(WAIT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(WAIT)
    assert _count(sessions, ReminderJob.state) == Counter({"sent": N})
    assert _count(sessions, SmsMessage.state) == Counter({"sending": 400, "queued": 100})
    assert len(sms.messages()) == 400

    # booked while the worker was down: only the restarted worker's reminders job can send it,
    # so once it went, that job has run over all the others too
    late = clinic.appointment(clinic.patient("+79169999999"), at=datetime.combine(tomorrow, time(18)))
    restarted = _start_worker(config, sms, log)
    try:
        wait_until(
            lambda: _count(sessions, SmsMessage.state) == Counter({"unknown": 400, "sent": 101}),
            WAIT,
            "the restarted worker to settle the ledger and send the new reminder",
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(WAIT)
    went_out = Counter(m["phone"] for m in sms.messages())
    assert len(went_out) == N + 1 and max(went_out.values()) == 1, "a patient got the reminder twice"
    assert went_out["79169999999"] == 1
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ReminderJob)) == N + 1
        assert s.scalar(select(ReminderJob.state).where(ReminderJob.appointment_id == late)) == "sent"
