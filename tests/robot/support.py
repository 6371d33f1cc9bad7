"""Small helpers for the robot tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import BaseWSGIServer, make_server

from clinic.mango import ManualClock
from clinic.models import JournalEntry, RobotTask
from emulators.mango import MangoEmulator

KEY = "robot-vpbx-key-0001"
SALT = "robot-vpbx-salt-s3cr3t"
CAMPAIGN = 56919


class ServerThread:
    """A WSGI app on a free 127.0.0.1 port in a thread."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class RunningEmulator:
    url: str
    emulator: MangoEmulator
    clock: ManualClock

    @property
    def api_base(self) -> str:
        return self.url + "/vpbx/"


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
