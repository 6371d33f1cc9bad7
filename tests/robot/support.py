"""Small helpers for the robot tests."""

from __future__ import annotations

from typing import Any

import requests

# The same server thread and emulator handle as the Mango client tests (re-exported).
from mango.support import RunningEmulator as RunningEmulator
from mango.support import ServerThread as ServerThread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import JournalEntry, RobotTask

KEY = "robot-vpbx-key-0001"
SALT = "robot-vpbx-salt-s3cr3t"
CAMPAIGN = 56919


def emulator_tasks(emu: RunningEmulator) -> list[dict[str, Any]]:
    reply = requests.get(emu.url + "/_emulator/tasks", timeout=10)
    reply.raise_for_status()
    return list(reply.json()["tasks"])


def admin(emu: RunningEmulator, path: str, body: Any = None) -> dict[str, Any]:
    reply = requests.post(emu.url + "/_emulator/" + path, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def robot_tasks(sessions: sessionmaker[Session]) -> list[RobotTask]:
    with sessions() as session:
        rows = list(session.scalars(select(RobotTask).order_by(RobotTask.id)))
        for row in rows:
            _ = row.items  # load before the session closes
        return rows


def journal_lines(sessions: sessionmaker[Session], service: str = "TMangoOfficeThread") -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(JournalEntry.message).where(JournalEntry.service == service).order_by(JournalEntry.id)
            )
        )
