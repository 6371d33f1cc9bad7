"""Server task «Отправка сведений в Mango Office»: schedule, journal, resumption, and a real
kill -9 of the worker process in the middle of an export that then sends nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.mango import SystemClock
from clinic.models import ExternalSystem, RobotTask, ServerTask, ServerTaskRun
from clinic.models.robot import ROBOT_PENDING, ROBOT_SENT, ROBOT_UNKNOWN, RUN_DONE, RUN_RUNNING
from clinic.robot.server_task import export_tick, is_due, run_export_task
from clinic.robot.systems import ClientOptions

from .conftest import Clinic
from .support import RunningEmulator, admin, emulator_tasks, journal_lines, robot_tasks

ROOT = Path(__file__).resolve().parents[2]


def _task(**fields: object) -> ServerTask:
    values: dict[str, object] = {"name": "x", "is_enabled": True, "run_at": "09:00", "run_requested": False}
    values.update(fields)
    return ServerTask(**values)


@pytest.mark.parametrize(
    ("fields", "now", "due"),
    [
        ({}, datetime(2026, 5, 14, 8, 59), False),
        ({}, datetime(2026, 5, 14, 9, 0), True),
        ({"last_run_date": datetime(2026, 5, 14).date()}, datetime(2026, 5, 14, 23, 0), False),
        ({"last_run_date": datetime(2026, 5, 13).date()}, datetime(2026, 5, 14, 9, 1), True),
        ({"is_enabled": False}, datetime(2026, 5, 14, 10, 0), False),
        (
            {"run_requested": True, "last_run_date": datetime(2026, 5, 14).date()},
            datetime(2026, 5, 14, 1, 0),
            True,
        ),
        ({"run_requested": True, "is_enabled": False}, datetime(2026, 5, 14, 10, 0), False),
    ],
)
def test_daily_schedule(fields: dict[str, object], now: datetime, due: bool) -> None:
    assert is_due(_task(**fields), now) is due


def test_a_run_writes_the_manuals_journal(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    task_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    for hour in (9, 10):
        clinic.appointment(at=time(hour, 0))

    run = run_export_task(sessions, task_id, options=options)

    assert run is not None and run.state == RUN_DONE and (run.found, run.sent) == (2, 2)
    assert journal_lines(sessions) == [
        "Поток создан",
        "Запускаю поток",
        f"Начата отправка сведений в Mango Office. Дата приёма: {clinic.day:%d.%m.%Y}",
        "Найдено записей: 2",
        "Отправлено записей: 2, ошибок: 0, пропущено: 0",
        "Остановка отправки сведений в Mango Office.",
        "Поток разрушен",
    ]
    assert journal_lines(sessions, service="TSmsThread") == []


def test_tick_runs_once_a_day(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    task_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    clinic.appointment()

    first = export_tick(sessions, options=options)
    second = export_tick(sessions, options=options)

    assert len(first) == 1 and second == []
    assert len(emulator_tasks(emu)) == 1


def test_run_now_request_runs_again_the_same_day(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    task_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    export_tick(sessions, options=options)
    clinic.appointment()  # booked after the morning run
    with sessions() as session, session.begin():
        task = session.get(ServerTask, task_id)
        assert task is not None
        task.run_requested = True

    runs = export_tick(sessions, options=options)

    assert len(runs) == 1 and len(emulator_tasks(emu)) == 1


def test_a_failing_run_is_journalled(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    task_id: int,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    with sessions() as session, session.begin():
        system = session.get(ExternalSystem, system_id)
        assert system is not None
        system.api_salt = "wrong-salt"

    run = run_export_task(sessions, task_id, options=options)

    assert run is not None and run.state == "failed"
    lines = journal_lines(sessions)
    assert any(line.startswith("Ошибка: Mango Office ответил ошибкой 3102") for line in lines), lines
    assert lines[-1] == "Поток разрушен"


def test_lost_answer_is_settled_by_the_next_run_without_a_second_task(
    sessions: sessionmaker[Session], clinic: Clinic, task_id: int, emu: RunningEmulator, clock: object
) -> None:
    appointment = clinic.appointment()
    admin(emu, "faults", {"path": "task/add", "kind": "delay_after", "seconds": 60})
    impatient = ClientOptions(clock=clock, read_timeout=0.5)  # type: ignore[arg-type]

    run_export_task(sessions, task_id, options=impatient)
    [row] = robot_tasks(sessions)
    assert row.state == ROBOT_UNKNOWN
    emu.emulator.holds.release_all()

    with sessions() as session, session.begin():
        task = session.get(ServerTask, task_id)
        assert task is not None
        task.run_requested = True
    export_tick(sessions, options=ClientOptions(clock=clock))  # type: ignore[arg-type]

    [row] = robot_tasks(sessions)
    assert row.state == ROBOT_SENT and "5109" in row.error
    [mango_task] = emulator_tasks(emu)
    assert mango_task["fields"]["comment"] == str(appointment)
    assert "Незавершённых отправок с прошлого запуска: 1" in journal_lines(sessions)


def _worker(config: Config) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": config.database_url, "MIS_DATA_DIR": str(config.data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "worker", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_kill_the_worker_mid_export_and_restart_sends_nothing_twice(
    sessions: sessionmaker[Session],
    config: Config,
    clinic: Clinic,
    start_emulator,  # type: ignore[no-untyped-def]
    hooks_url: str,
) -> None:
    # real time; the emulator's own rate windows are off so a jitter-refused request cannot
    # swallow the injected fault (our client still paces task/add at 5/s)
    emu = start_emulator(clock=SystemClock(), rate_limit=None, task_add_rate=None)
    with sessions() as session, session.begin():
        system = ExternalSystem(
            api_key=emu.emulator.options.api_key,
            api_salt=emu.emulator.options.api_salt,
            campaign_id=56919,
            base_url=emu.api_base,
            field_names="",
            field_ids="",
            webhook_secret="",
            webhook_ips="",
            last_check_message="",
            rate_per_s=5,
        )
        session.add(system)
        session.flush()
        session.add(
            ServerTask(name="Отправка", external_system_id=system.id, is_enabled=True, run_at="00:00")
        )
    appointments = [clinic.appointment(at=time(8 + i // 4, (i % 4) * 15)) for i in range(12)]
    twice = clinic.patient(phone="+79169999999")
    appointments += [clinic.appointment(twice, at=time(17, 0)), clinic.appointment(twice, at=time(18, 0))]
    # the 6th task/add is carried out by Mango, but its answer never leaves
    admin(emu, "faults", {"path": "task/add", "kind": "delay_after", "seconds": 600, "skip": 5})

    first = _worker(config)
    try:
        assert emu.emulator.holds.wait_for_waiting(1, timeout=300), "the worker never reached the 6th task"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    emu.emulator.holds.release_all()
    assert first.returncode == -signal.SIGKILL

    # The batch was claimed (committed) before sending; its sent states commit after the
    # batch, so the kill left all 13 pending while Mango already holds at least 6 of them
    # (requests in flight next to the held one may have landed too).
    states = [t.state for t in robot_tasks(sessions)]
    assert states == [ROBOT_PENDING] * 13
    already_at_mango = len(emulator_tasks(emu))
    assert 6 <= already_at_mango < 13
    with sessions() as session:
        [run] = session.scalars(select(ServerTaskRun)).all()
        assert run.state == RUN_RUNNING
    assert "Поток разрушен" not in journal_lines(sessions)

    second = _worker(config)
    output = second.communicate(timeout=600)[0].decode()
    assert second.returncode == 0, output

    mango = emulator_tasks(emu)
    numbers = [t["fields"]["number"] for t in mango]
    assert len(numbers) == len(set(numbers)) == 13  # 12 patients + one with two appointments
    rows = robot_tasks(sessions)
    assert all(r.state == ROBOT_SENT for r in rows)
    sent_items = sorted(i.appointment_id for r in rows for i in r.items)
    assert sent_items == sorted(appointments)
    comments = sorted(t["fields"]["comment"] for t in mango)
    assert comments == sorted(r.ref for r in rows)
    settled_by_5109 = [r for r in rows if "5109" in r.error]
    assert len(settled_by_5109) == already_at_mango  # Mango refused the repeats: they had gone through
    lines = journal_lines(sessions)
    assert "Возобновляю прерванный поток" in lines
    assert "Незавершённых отправок с прошлого запуска: 13" in lines
    assert lines[-1] == "Поток разрушен"
    with sessions() as session:
        [run] = session.scalars(select(ServerTaskRun)).all()
        assert run.state == RUN_DONE
        assert session.scalar(select(RobotTask).where(RobotTask.state != ROBOT_SENT)) is None


def test_task_form_refuses_non_ascii_digits() -> None:
    from clinic.robot.server_task import parse_hhmm, validate_task

    assert parse_hhmm("0²:00") is None and parse_hhmm("٠٩:٠٠") is None
    _, errors = validate_task({"run_at": "09:00", "external_system_id": "²"})
    assert "external_system_id" in errors
