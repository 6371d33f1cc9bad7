"""The Mango export's live progress (issue 11, point 4): `export_day` reports found /
exported / failed / left after each committed batch, `ExportProgress` turns that into the
`progress` snapshots of the task for the admins, and `finish` sends the final `done`."""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from clinic.progress import Publisher
from clinic.robot.export import ExportProgress, export_day
from clinic.robot.systems import ClientOptions

from .conftest import Clinic
from .support import RunningEmulator, emulator_tasks


def test_the_export_reports_each_batch_and_the_end(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    for i in range(5):
        clinic.appointment(clinic.patient(phone=f"+7916111{i:04d}"), at=time(9, 10 * i))
    posted: list[dict[str, Any]] = []
    publisher = Publisher(
        "http://127.0.0.1:1", "t0ken", interval=0.0, post=lambda _url, body, _headers: posted.append(body)
    )
    tracker = ExportProgress(publisher, task_id=42)

    report = export_day(sessions, system_id, clinic.day, options=options, batch=2, on_progress=tracker)
    tracker.finish(report)

    assert len(emulator_tasks(emu)) == 5
    seen = [(p["sent"], p["failed"], p["left"], p["done"]) for p in posted]
    # found 5; batch 1 recorded when batch 2 is queued, batch 2 with batch 3, the rest at the end
    assert seen == [(0, 0, 5, False), (2, 0, 3, False), (4, 0, 1, False), (5, 0, 0, True)]
    assert {(p["kind"], p["id"], p["admins"], tuple(p["user_ids"])) for p in posted} == {
        ("export", 42, True, ())
    }
    assert all(p["started_at"] and p["rate"] >= 0 for p in posted)


def test_the_server_task_publishes_its_run(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    task_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    """The worker's export job hands its publisher to the run: «Серверные задачи» sees the
    run's progress and, once the run's row is written, `done`."""
    from sqlalchemy import select

    from clinic.models import ServerTaskRun
    from clinic.robot.server_task import run_export_task

    for i in range(3):
        clinic.appointment(clinic.patient(phone=f"+7916222{i:04d}"), at=time(10, 10 * i))
    posted: list[dict[str, Any]] = []
    seen_done_after_row: list[bool] = []

    def post(_url: str, body: dict[str, Any], _headers: Any) -> None:
        posted.append(body)
        if body["done"]:  # the page reloads on it: the run's row must already say it ended
            with sessions() as s:
                last = s.scalars(select(ServerTaskRun).where(ServerTaskRun.task_id == task_id)).one()
                seen_done_after_row.append(last.finished_at is not None)

    publisher = Publisher("http://127.0.0.1:1", "t0ken", interval=0.0, post=post)
    assert run_export_task(sessions, task_id, options=options, publisher=publisher) is not None
    assert posted and posted[-1]["done"] and posted[-1]["sent"] == 3
    assert seen_done_after_row == [True]
    assert all(p["kind"] == "export" and p["id"] == task_id for p in posted)
