"""The demo wiring `make run` uses: the seeded Mango entry and the emulator command built
from it, started as a real process, answer each other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import ExternalSystem, ServerTask
from clinic.robot.demo import emulator_command
from clinic.robot.systems import check_connection
from clinic.seed import seed_demo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_seeded_entry_talks_to_the_emulator_process(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("MIS_MANGO_EMULATOR_PORT", str(port))
    seed_demo(sessions, date(2026, 5, 14))
    seed_demo(sessions, date(2026, 5, 14))

    with sessions() as session:
        command = emulator_command(session, sys.executable, "http://127.0.0.1:55055")
        [task] = session.scalars(select(ServerTask)).all()  # seeding twice made one
        assert len(session.scalars(select(ExternalSystem)).all()) == 1
        assert task.service_name == "TMangoOfficeThread"
    assert command is not None
    argv, env = command
    assert "--key" not in argv and "--salt" not in argv  # secrets go through the environment
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "mango emulator listening on" in proc.stdout.readline()
        with sessions() as session:
            system = session.scalar(select(ExternalSystem))
            assert system is not None
            result = check_connection(session, system, sessions)
            session.commit()
        assert result.ok, result.message
    finally:
        proc.terminate()
        proc.wait(timeout=10)
