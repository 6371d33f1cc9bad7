"""The callback path reads and writes rows with plain SQL (clinic/robot/status.py), while the
group committer runs several callbacks, and the ORM, in one session: what one write did must
be what the next one (and any ORM copy of the row) sees."""

from __future__ import annotations

from datetime import time

from sqlalchemy.orm import Session, sessionmaker

from clinic.models import STATUS_CANCELLED, Appointment, RobotTask
from clinic.robot.export import export_day
from clinic.robot.status import (
    APPLIED,
    REPEATED,
    SOURCE_CALLBACK,
    apply_status_for_ref,
    find_task,
)
from clinic.robot.systems import ClientOptions

from .conftest import Clinic
from .support import RunningEmulator


def _exported(
    sessions: sessionmaker[Session], clinic: Clinic, system_id: int, options: ClientOptions
) -> tuple[int, str]:
    appointment_id = clinic.appointment(at=time(11, 0))
    export_day(sessions, system_id, clinic.day, options=options)
    with sessions() as session:
        task = session.query(RobotTask).one()
        return appointment_id, task.ref


def test_callbacks_in_one_session_see_each_other_and_the_orm_copy_follows(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    appointment_id, ref = _exported(sessions, clinic, system_id, options)
    with sessions() as session:
        loaded = session.get(Appointment, appointment_id)  # an ORM copy, as a neighbour write leaves
        assert loaded is not None and loaded.confirmation_status == ""

        first = apply_status_for_ref(session, ref, 1, SOURCE_CALLBACK)
        assert first is not None and first.result == APPLIED and first.changed == [appointment_id]
        assert loaded.confirmation_status == "confirmed"  # expired and reloaded, not the old value
        assert loaded.extra_info.splitlines()[0] == "Запись подтверждена"

        again = apply_status_for_ref(session, ref, 1, SOURCE_CALLBACK)
        assert again is not None and again.result == REPEATED and again.unchanged == [appointment_id]

        cancelled = apply_status_for_ref(session, ref, 2, SOURCE_CALLBACK)
        assert cancelled is not None and cancelled.result == APPLIED
        assert loaded.status == STATUS_CANCELLED
        task = find_task(session, ref)
        assert task is not None and task.result_status == 2
        session.commit()

    with sessions() as session:  # and it is what was stored
        stored = session.get(Appointment, appointment_id)
        assert stored is not None
        assert (stored.status, stored.confirmation_status) == (STATUS_CANCELLED, "cancelled")


def test_an_unknown_ref_is_none_and_writes_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert apply_status_for_ref(session, "no-such-ref", 1, SOURCE_CALLBACK) is None
        assert not session.dirty and not session.new
