"""Group commit survives a crash (issue 11, point 3): the hooks listener (`mis-telephony
hooks`, a real child process on its own SQLite file) is killed with SIGKILL while 100
concurrent callbacks — Mango UpdateStatus and sms.ru delivery reports — are in flight.

Every callback that got its 200 is in the database (it was answered only after its
commit); after a restart, the callbacks that got no answer are resent, as Mango and sms.ru
do, and then all 100 are applied exactly once: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import eventskit
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import make_engine, make_session_factory, migrate, transaction
from clinic.models import (
    Appointment,
    ClinicSettings,
    Employee,
    ExchangeLogEntry,
    ExternalSystem,
    Patient,
    RobotTask,
    RobotTaskItem,
    Service,
    SmsMessage,
)
from clinic.smsru.webhook import sign

ROOT = Path(__file__).resolve().parents[2]
SECRET = "crash-webhook-secret-0123456789"
API_ID = "5A1B2C3D-7777-4E5F-9A8B-0123456789AB"
PER_KIND = 50  # 50 UpdateStatus + 50 sms.ru callbacks
KILL_AFTER = 10  # answers received before the kill
WAIT = 60.0
T0 = int(time.time()) - 60
MANGO_OWNER = "Mango Office UpdateStatus"
SMSRU_OWNER = "sms.ru Отчёты о доставке"


@dataclass(frozen=True)
class Callback:
    kind: str  # mango | smsru
    key: str  # the Mango task ref or the sms.ru message id

    def send(self, client: httpx.Client, port: int) -> httpx.Response:
        base = f"http://127.0.0.1:{port}"
        if self.kind == "mango":
            return client.post(
                f"{base}/MangoOffice/UpdateStatus",
                json={"id": self.key, "status": 1},
                headers={"X-Webhook-Token": SECRET},
            )
        record = f"sms_status\n{self.key}\n103\n{T0}"
        return client.post(f"{base}/smsru/callback", data={"data[0]": record, "hash": sign(API_ID, [record])})


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    eventskit.wait_until(predicate, WAIT, what, step=0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def crash_db(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    migrate(url)
    engine = make_engine(url)
    yield url, make_session_factory(engine)
    engine.dispose()


def populate(sessions: sessionmaker[Session]) -> list[Callback]:
    with transaction(sessions) as session:
        session.add(ClinicSettings(name="Клиника", sms_api_key=API_ID, timezone="Europe/Moscow"))
        system = ExternalSystem(
            name="Mango Office", api_key="k", api_salt="s", campaign_id=1, base_url="http://127.0.0.1:9/",
            field_names="", field_ids="", webhook_secret=SECRET, webhook_ips="", digit_status="1=1 2=2",
            rate_per_s=5, last_check_message="",
        )  # fmt: skip
        doctor = Employee(last_name="Терапевтов", first_name="Олег", patronymic="Ильич", specialty="Терапевт")
        service = Service(code="B01", name="Приём терапевта", duration_min=20, price=0)
        session.add_all([system, doctor, service])
        session.flush()
        now = datetime.now(UTC)
        day = datetime.combine(datetime.now().date() + timedelta(days=1), datetime.min.time())
        for i in range(PER_KIND):
            patient = Patient(
                last_name=f"Пациент{i}", first_name="Иван", patronymic="", phone=f"+7916{i:07d}"
            )
            session.add(patient)
            session.flush()
            starts = day + timedelta(hours=8, minutes=10 * i)
            appointment = Appointment(
                patient_id=patient.id, doctor_id=doctor.id, service_id=service.id, starts_at=starts,
                extra_info="", cancel_reason="", confirmation_status="", confirmation_source="",
            )  # fmt: skip
            session.add(appointment)
            session.flush()
            task = RobotTask(
                external_system_id=system.id, campaign_id=1, phone=patient.phone, ref=f"crash-{i}",
                task_id=1000 + i, state="sent",
            )  # fmt: skip
            session.add(task)
            session.flush()
            session.add(RobotTaskItem(robot_task_id=task.id, appointment_id=appointment.id, starts_at=starts))
            session.add(
                SmsMessage(
                    idempotency_key=f"crash:{i}", source="single", phone=f"7916{i:07d}", text="Приём завтра",
                    state="sent", sms_id=f"000000-{i}", gateway_code=100, created_at=now, sent_at=now,
                )
            )  # fmt: skip
    mango = [Callback("mango", f"crash-{i}") for i in range(PER_KIND)]
    smsru = [Callback("smsru", f"000000-{i}") for i in range(PER_KIND)]
    return [c for pair in zip(mango, smsru, strict=True) for c in pair]


def start_hooks(url: str, data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "hooks", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "MIS_DATA_DIR": str(data_dir)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"hooks exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, "the hooks listener")
    return proc


def applied(sessions: sessionmaker[Session], callback: Callback) -> bool:
    with sessions() as session:
        if callback.kind == "mango":
            query = (
                select(Appointment.confirmation_status)
                .join(RobotTaskItem, RobotTaskItem.appointment_id == Appointment.id)
                .join(RobotTask, RobotTask.id == RobotTaskItem.robot_task_id)
                .where(RobotTask.ref == callback.key)
            )
            return session.scalar(query) == "confirmed"
        code = session.scalar(select(SmsMessage.delivery_code).where(SmsMessage.sms_id == callback.key))
        return code == 103


def times_applied(sessions: sessionmaker[Session], callback: Callback) -> int:
    """How many exchange-log rows say this callback changed something."""
    with sessions() as session:
        rows = session.scalars(
            select(ExchangeLogEntry).where(ExchangeLogEntry.owner.in_([MANGO_OWNER, SMSRU_OWNER]))
        ).all()
    count = 0
    for row in rows:
        if callback.kind == "mango" and row.owner == MANGO_OWNER and row.http_status == 200:
            body = json.loads(row.response)
            count += body["id"] == callback.key and body["result"] == "applied"
        elif callback.kind == "smsru" and row.owner == SMSRU_OWNER:
            count += f"применена: {callback.key}: 103" in row.response
    return count


def fire(callbacks: list[Callback], port: int, on_answer: Callable[[], None]) -> dict[int, int | None]:
    """All callbacks at once, each on its own connection; the HTTP status of each, None if
    the connection died without an answer."""
    answers: dict[int, int | None] = {}

    def one(i: int) -> None:
        try:
            with httpx.Client(timeout=WAIT) as client:
                answers[i] = callbacks[i].send(client, port).status_code
        except httpx.HTTPError:
            answers[i] = None
            return
        on_answer()

    with ThreadPoolExecutor(len(callbacks)) as pool:
        list(pool.map(one, range(len(callbacks))))
    return answers


def test_kill_9_in_flight_loses_no_answered_callback_and_resends_apply_once(
    crash_db: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> None:
    url, sessions = crash_db
    callbacks = populate(sessions)
    log = tmp_path / "hooks.log"
    port = free_port()
    proc = start_hooks(url, tmp_path, port, log)
    answered = 0
    lock = threading.Lock()

    def kill_at_the_tenth() -> None:
        # in the answering thread itself: a killer thread of its own could be scheduled
        # late on a busy machine, after the server had answered everything
        nonlocal answered
        with lock:
            answered += 1
            if answered == KILL_AFTER:
                proc.send_signal(signal.SIGKILL)

    try:
        answers = fire(callbacks, port, kill_at_the_tenth)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
    assert proc.returncode == -signal.SIGKILL

    ok = [i for i, status in answers.items() if status == 200]
    unanswered = [i for i in range(len(callbacks)) if answers.get(i) != 200]
    assert len(ok) >= KILL_AFTER and unanswered, f"{len(ok)} answered: the kill came too late"
    lost = [callbacks[i] for i in ok if not applied(sessions, callbacks[i])]
    assert lost == [], "answered 200 but not in the database"

    # the senders resend what got no 200 (sms.ru every minute, Mango on its own schedule)
    proc = start_hooks(url, tmp_path, free_port(), log)
    port = int(proc.args[-1])
    try:
        with httpx.Client(timeout=WAIT) as client:
            resent = {i: callbacks[i].send(client, port).status_code for i in unanswered}
    finally:
        proc.terminate()
        proc.wait(WAIT)
    assert set(resent.values()) == {200}
    assert [c for c in callbacks if not applied(sessions, c)] == []
    assert {c.key: times_applied(sessions, c) for c in callbacks} == {c.key: 1 for c in callbacks}
