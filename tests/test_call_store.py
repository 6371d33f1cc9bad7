"""The call log's store: a real call-log child process on the test database. Writes are
committed in order, a bad write costs only itself, closing commits what is queued, and a
child that dies is replaced with none of the writes it had not committed lost."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import aiorun
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ari_app.calls import queries as q
from ari_app.calls.store import CallStore, StoreError
from clinic.models import Call, CallLeg, Patient

FIELDS = {"direction": "outbound", "number": "+79161234567", "origin": "ui", "state": "dialing"}


def _calls(sessions: sessionmaker[Session]) -> dict[str, Call]:
    with sessions() as s:
        return {c.uid: c for c in s.scalars(select(Call)).all()}


async def _stopped(pid: int, timeout: float = 10.0) -> None:
    """Wait until the kernel shows the process stopped (state T), polling with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert loop.time() < deadline, "the call-log process did not stop"
        await asyncio.sleep(0.01)


def test_writes_commit_in_order_and_reads_see_them(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    async def go() -> tuple[tuple[str, int | None] | None, tuple[str, int | None] | None]:
        store = CallStore(database_url)
        try:
            store.create_call(uid="c1", **FIELDS)
            store.update_call("c1", state="calling")
            store.update_call("c1", state="talking", result="answered")
            now = datetime.now(UTC)
            legs = [
                {"channel_id": "c1-r1", "role": "registrar", "endpoint": "PJSIP/reg101", "ended_at": None}
            ]
            await store.end_call("c1", legs, state="ended", reason="Звонок завершён", ended_at=now)
            # sent again (a call-log restart after the commit, before the reply): legs once
            await store.end_call("c1", legs, state="ended", reason="Звонок завершён", ended_at=now)
            return await store.read(q.logged_call, "c1"), await store.read(q.logged_call, "nope")
        finally:
            store.close()

    found, missing = aiorun.run(go)
    assert found == ("Звонок завершён", None) and missing is None
    call = _calls(sessions)["c1"]
    assert (call.state, call.result, call.reason) == ("ended", "answered", "Звонок завершён")
    with sessions() as s:
        leg = s.scalars(select(CallLeg)).one()
        assert leg.channel_id == "c1-r1" and leg.ended_at is not None  # the call's end time


def test_a_bad_write_costs_only_itself(database_url: str, sessions: sessionmaker[Session]) -> None:
    async def go() -> str:
        store = CallStore(database_url)
        try:
            store.create_call(uid="a", **FIELDS)
            store.create_call(uid="a", **{**FIELDS, "number": "dup"})  # uid is unique: fails
            store.create_call(uid="b", **FIELDS)  # in the same group: still committed
            with pytest.raises(StoreError) as failed:
                await store.run(q.create_call, {"uid": "b", **FIELDS})
            await store.run(q.update_call, "a", {"state": "calling"})
            return str(failed.value)
        finally:
            store.close()

    message = aiorun.run(go)
    assert "IntegrityError" in message
    calls = _calls(sessions)
    assert set(calls) == {"a", "b"} and calls["a"].number == "+79161234567" and calls["a"].state == "calling"


def test_close_commits_every_queued_write(database_url: str, sessions: sessionmaker[Session]) -> None:
    async def go() -> None:
        store = CallStore(database_url)
        for i in range(300):
            store.create_call(uid=f"q{i}", **FIELDS)
        store.close()  # nothing awaited: close itself must wait for the commits

    aiorun.run(go)
    assert len(_calls(sessions)) == 300


def test_a_dead_child_is_replaced_and_its_unsaved_writes_go_again(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    async def go() -> int:
        store = CallStore(database_url)
        try:
            await store.run(q.create_call, {"uid": "before", **FIELDS})  # the child is up
            first = store._proc.pid
            assert first is not None
            # frozen, the child takes nothing off the pipe: these writes stay unsaved ...
            os.kill(first, signal.SIGSTOP)
            await _stopped(first)
            store.create_call(uid="pending1", **FIELDS)
            store.update_call("pending1", state="talking")
            read = asyncio.ensure_future(store.read(q.logged_call, "before"))
            # ... and die with it
            os.kill(first, signal.SIGKILL)
            with pytest.raises(StoreError):
                await asyncio.wait_for(read, 30)  # a read in flight fails, it is not lost silently
            await asyncio.wait_for(store.run(q.update_call, "before", {"state": "ended"}), 60)
            assert store._proc.pid != first
            return store.restarts
        finally:
            store.close()

    restarts = aiorun.run(go)
    assert restarts == 1
    calls = _calls(sessions)
    assert calls["pending1"].state == "talking" and calls["before"].state == "ended"


def test_a_call_logged_for_a_number_finds_its_patient_in_the_same_write(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        patient = Patient(last_name="Звонков", first_name="Пётр", phone="+79161234567")
        s.add(patient)
        s.commit()
        pid = patient.id

    async def go() -> tuple[tuple[int | None, str], tuple[int | None, str]]:
        store = CallStore(database_url)
        try:
            known = store.create_call_for_number("8 (916) 123-45-67", uid="k", **FIELDS)
            store.update_call("k", state="calling")  # queued after it, applied after it
            unknown = store.create_call_for_number("+79990000000", uid="u", **FIELDS)
            return await known, await unknown
        finally:
            store.close()

    known, unknown = aiorun.run(go)
    assert known == (pid, "Звонков Пётр") and unknown == (None, "")
    calls = _calls(sessions)
    k = calls["k"]
    assert (k.patient_id, k.caller_name, k.state) == (pid, "Звонков Пётр", "calling")
    assert calls["u"].patient_id is None


def _unpicklable(_s: Session) -> object:
    return lambda: None  # a query bug: a result the pipe cannot carry


def test_a_result_that_cannot_be_sent_fails_only_its_request(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    async def go() -> str:
        store = CallStore(database_url)
        try:
            with pytest.raises(StoreError) as failed:
                await asyncio.wait_for(store.read(_unpicklable), 30)
            with pytest.raises(StoreError):
                await asyncio.wait_for(store.run(_unpicklable), 30)  # the writer thread too
            await asyncio.wait_for(store.run(q.create_call, {"uid": "after", **FIELDS}), 30)
            return str(failed.value)
        finally:
            store.close()

    assert "ответ не передаётся" in aiorun.run(go)
    assert "after" in _calls(sessions)


def test_a_burst_is_logged_in_one_batch_with_later_changes_folded_in(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    """Calls created within the batch window go in together; a change to a call of the same
    batch lands in its row, and each call keeps the moment it was submitted as its start."""
    with sessions() as s:
        patient = Patient(last_name="Пачкин", first_name="Иван", phone="+79160000001")
        s.add(patient)
        s.commit()
        pid = patient.id

    async def go() -> tuple[datetime, list[tuple[int | None, str]]]:
        store = CallStore(database_url)
        try:
            await store.run(q.update_call, "none", {"state": "calling"})  # the child is up
            found = [store.create_call_for_number("+79160000001", uid=f"p{i}", **FIELDS) for i in range(10)]
            for i in range(10):
                store.create_call(uid=f"c{i}", **FIELDS)
            for i in range(0, 10, 2):  # half of them change in the same batch: other columns
                store.update_call(f"c{i}", state="talking", result="answered", answered_at=datetime.now(UTC))
            submitted = datetime.now(UTC)
            await store.run(q.update_call, "c1", {"state": "calling"})  # the batch is committed
            return submitted, [await f for f in found]
        finally:
            store.close()

    submitted, owners = aiorun.run(go)
    assert owners == [(pid, "Пачкин Иван")] * 10
    calls = _calls(sessions)
    assert all(calls[f"p{i}"].patient_id == pid for i in range(10))
    assert [calls[f"c{i}"].state for i in range(4)] == ["talking", "calling", "talking", "dialing"]
    assert calls["c0"].result == "answered" and calls["c0"].answered_at is not None
    assert calls["c3"].result == "" and calls["c3"].answered_at is None
    for call in calls.values():  # the moment submitted, not when its batch was written
        assert call.started_at.replace(tzinfo=UTC) <= submitted


def _crash(_s: Session) -> None:
    os._exit(3)  # a write the process dies on: not an exception, a crash


def test_a_write_the_process_dies_on_is_dropped_and_the_others_are_kept(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    async def go() -> tuple[str, int]:
        store = CallStore(database_url)
        try:
            store.create_call(uid="before", **FIELDS)
            poison = asyncio.ensure_future(store.run(_crash))
            store.create_call(uid="after", **FIELDS)
            with pytest.raises(StoreError) as dropped:
                await asyncio.wait_for(poison, 60)
            await asyncio.wait_for(store.run(q.update_call, "after", {"state": "calling"}), 60)
            return str(dropped.value), store.restarts
        finally:
            store.close()

    message, restarts = aiorun.run(go)
    assert "отброшена" in message
    # the first death may take an innocent write with it (one batch); from then on the
    # writes go one per transaction and the culprit is found: bounded, not a restart loop
    assert 3 <= restarts <= 4
    calls = _calls(sessions)
    assert set(calls) == {"before", "after"} and calls["after"].state == "calling"
