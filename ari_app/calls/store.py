"""The call log's writes, run in one writer thread so the event loop never waits on the
database and SQLite sees one writer at a time."""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Call, CallLeg, CallRecording, utcnow
from clinic.models.calls import STATE_ENDED

T = TypeVar("T")
log = logging.getLogger(__name__)


def _set(s: Session, uid: str, fields: dict[str, Any]) -> None:
    # Core, not the ORM: a fraction of the CPU, and this thread shares the GIL with the
    # event loop that is placing calls
    s.execute(update(Call).where(Call.uid == uid).values(**fields))


Pending = tuple[Callable[[Session], Any], "asyncio.AbstractEventLoop | None", "asyncio.Future[Any] | None"]


def _resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class CallStore:
    """Writes go through one writer thread, in order, and are committed in groups: whatever
    queued up while the previous group ran goes into one transaction (a burst of 50 new
    calls is one commit, not 50; this thread shares the GIL with the event loop that is
    placing those calls). Most writes are queued without waiting (`submit`): the live call
    state is in memory, the log follows it. Writes that end a call are awaited (`run`), and
    since the queue is ordered, every earlier write of that call is in the database by then.
    Reads use their own small pool (SQLite WAL readers do not block)."""

    GROUP = 500  # writes per transaction at most

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="call-store", daemon=True)
        self._writer.start()
        self._readers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="call-read")

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._write_group(group)
            if stop:
                return

    def _write_group(self, group: list[Pending]) -> None:
        try:
            with transaction(self.sessions) as session:
                results = [fn(session) for fn, _, _ in group]
        except Exception:
            if len(group) > 1:  # find the bad one: each write alone
                for item in group:
                    self._write_group([item])
                return
            fn, loop, fut = group[0]
            log.exception("call log write failed")
            if loop is not None and fut is not None:
                exc = sys.exc_info()[1]
                loop.call_soon_threadsafe(_resolve, fut, None, exc)
            return
        for (_, loop, fut), result in zip(group, results, strict=True):
            if loop is not None and fut is not None:
                loop.call_soon_threadsafe(_resolve, fut, result, None)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """A write, awaited (ordered after every write submitted before it)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, fut))
        return await fut

    async def read(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with transaction(self.sessions) as session:
                return fn(session)

        return await asyncio.get_running_loop().run_in_executor(self._readers, work)

    def submit(self, fn: Callable[[Session], Any]) -> None:
        """A write queued in order, not awaited; a failure is logged."""
        self._queue.put((fn, None, None))

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._readers.shutdown(wait=True)

    # -- writes --------------------------------------------------------------------------

    def create_call(self, **fields: Any) -> None:
        self.submit(lambda s: s.execute(insert(Call).values(**fields)))

    def update_call(self, uid: str, **fields: Any) -> None:
        self.submit(lambda s: _set(s, uid, fields))

    async def end_call(self, uid: str, legs: list[dict[str, Any]] | None = None, **fields: Any) -> None:
        """The call's final state and all its legs, in one transaction, awaited."""

        def fn(s: Session) -> None:
            _set(s, uid, fields)
            call_id = s.scalar(select(Call.id).where(Call.uid == uid))
            if call_id is not None and legs:
                now = fields.get("ended_at")
                s.execute(
                    insert(CallLeg),
                    [{**leg, "call_id": call_id, "ended_at": leg["ended_at"] or now} for leg in legs],
                )

        await self.run(fn)

    def add_leg(self, uid: str, channel_id: str, role: str, endpoint: str) -> None:
        def fn(s: Session) -> None:
            call = s.scalars(select(Call).where(Call.uid == uid)).first()
            if call is not None:
                s.add(CallLeg(call_id=call.id, channel_id=channel_id, role=role, endpoint=endpoint))

        self.submit(fn)

    def update_leg(self, channel_id: str, **fields: Any) -> None:
        def fn(s: Session) -> None:
            for leg in s.scalars(select(CallLeg).where(CallLeg.channel_id == channel_id)).all():
                for k, v in fields.items():
                    setattr(leg, k, v)

        self.submit(fn)

    def add_recording(self, uid: str, name: str, patient_id: int | None, user_id: int | None) -> None:
        def fn(s: Session) -> None:
            call = s.scalars(select(Call).where(Call.uid == uid)).first()
            if call is not None:
                s.add(CallRecording(call_id=call.id, name=name, patient_id=patient_id, user_id=user_id))

        self.submit(fn)

    async def finish_recording(self, name: str, state: str, duration_s: int | None) -> None:
        def fn(s: Session) -> None:
            rec = s.scalars(select(CallRecording).where(CallRecording.name == name)).first()
            if rec is not None and rec.state == "recording":
                rec.state, rec.duration_s, rec.ended_at = state, duration_s, utcnow()

        await self.run(fn)

    async def close_stale(self, keep_uids: set[str], reason: str) -> list[str]:
        """End every call still active in the log whose uid is not in `keep_uids` (its
        channels are gone: Asterisk restarted, or this process did). Returns their uids."""

        def fn(s: Session) -> list[str]:
            now: datetime = utcnow()
            closed = []
            for call in s.scalars(select(Call).where(Call.state != STATE_ENDED)).all():
                if call.uid in keep_uids:
                    continue
                call.state, call.ended_at, call.reason = STATE_ENDED, now, reason
                call.result = call.result or ("answered" if call.answered_at else "failed")
                for leg in call.legs:
                    leg.ended_at = leg.ended_at or now
                for rec in call.recordings:
                    if rec.state == "recording":
                        rec.state, rec.ended_at = "done", now
                closed.append(call.uid)
            return closed

        return await self.run(fn)
