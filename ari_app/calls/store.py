"""The call log's writes, run in one worker thread so the event loop never waits on the
database and SQLite sees one writer at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Call, CallLeg, CallRecording, utcnow
from clinic.models.calls import STATE_ENDED

T = TypeVar("T")


class CallStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-store")

    async def run(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with transaction(self.sessions) as session:
                return fn(session)

        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- writes --------------------------------------------------------------------------

    async def create_call(self, **fields: Any) -> int:
        def fn(s: Session) -> int:
            call = Call(**fields)
            s.add(call)
            s.flush()
            return call.id

        return await self.run(fn)

    async def update_call(self, call_id: int, **fields: Any) -> None:
        def fn(s: Session) -> None:
            call = s.get(Call, call_id)
            if call is not None:
                for k, v in fields.items():
                    setattr(call, k, v)

        await self.run(fn)

    async def add_leg(self, call_id: int, channel_id: str, role: str, endpoint: str) -> None:
        await self.run(
            lambda s: s.add(CallLeg(call_id=call_id, channel_id=channel_id, role=role, endpoint=endpoint))
        )

    async def update_leg(self, channel_id: str, **fields: Any) -> None:
        def fn(s: Session) -> None:
            for leg in s.scalars(select(CallLeg).where(CallLeg.channel_id == channel_id)).all():
                for k, v in fields.items():
                    setattr(leg, k, v)

        await self.run(fn)

    async def add_recording(
        self, call_id: int, name: str, patient_id: int | None, user_id: int | None
    ) -> int:
        def fn(s: Session) -> int:
            rec = CallRecording(call_id=call_id, name=name, patient_id=patient_id, user_id=user_id)
            s.add(rec)
            s.flush()
            return rec.id

        return await self.run(fn)

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
