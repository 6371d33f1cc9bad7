"""The call log's database work, in a process of its own ("call-log").

ari_app's event loop places calls. SQLAlchemy work in threads of the same process holds the
GIL about a millisecond per query, and the loop waits for it: a patient lookup beside each
click-to-call delayed the originates (bench/calls.py, 50 concurrent calls: request → bridged
p50 160 ms with the reads and writes in threads, ~100 ms without them). So every read and
write runs in a child process, much as Wazo keeps its call log in a daemon of its own
(wazo-call-logd). The loop pickles a request (a module-level function of queries.py and its
arguments) into a pipe and reads the replies when the pipe is readable (`add_reader`): no
thread on this side.

In the child a receiver thread takes requests off the pipe at once (so the parent's writes
never wait on a full pipe), one writer thread commits the writes in order and in batches,
and a few reader threads answer the reads (SQLite WAL readers do not block). A batch is
what arrives within BATCH_WAIT_S of its first write, or up to a write someone awaits (ending
a call): one transaction, new calls in one multi-row INSERT with their later changes of the
same batch folded in (`_Batch`). The writer runs at nice 19: in a burst of calls the log
waits, the calls do not. If the child dies, a new one starts and every write it had not
committed is sent again, one per transaction; a write the process dies on MAX_CRASHES times
is dropped (its caller gets StoreError) rather than killing every new child. Reads in flight
fail with StoreError.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from ari_app.calls import queries as q
from ari_app.calls.log_process import Request, dumps, loads, serve
from clinic.models import utcnow

T = TypeVar("T")
log = logging.getLogger(__name__)


RESTART_DELAY_S = 1.0  # before starting again a child that died young (no restart storm)
MAX_CRASHES = 3  # deaths of the call-log process a write may be the suspect of before it is dropped


class StoreError(Exception):
    """A database request failed (the message says why), or the call-log process died."""


class CallStore:
    """The parent's side. Most writes are queued without waiting (`submit`): the live call
    state is in memory, the log follows it. Writes that end a call are awaited (`run`); as
    writes are committed in order, every earlier write of that call is in the database by
    then."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._seq = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._unsaved: dict[int, Request] = {}  # writes sent and not committed yet, in order
        self._crashes: dict[int, int] = {}  # seq -> children that died with it the oldest unsaved
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Connection | None = None
        self._closing = False
        self.ready = False  # the current child has opened the database
        self.restarts = 0
        self._start()

    # -- the child's life ----------------------------------------------------------------

    @property
    def unsaved(self) -> int:
        """Writes sent to the call-log process and not committed yet."""
        return len(self._unsaved)

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._conn, child_end = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=serve, args=(child_end, self.database_url), name="call-log")
        self._proc.start()
        child_end.close()
        self._started = time.monotonic()
        self.ready = False
        self._watched = False
        with contextlib.suppress(RuntimeError):  # no running loop yet: watched from the first request
            self._watch()
        for seq, _, fn, args in list(self._unsaved.values()):
            # each in a transaction of its own: if one of them crashes the process, those
            # before it are committed and it is the oldest unsaved write when the child dies
            self._send((seq, "w!", fn, args))

    def _watch(self) -> None:
        if not self._watched and self._conn is not None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._conn.fileno(), self._on_readable)
            self._watched = True

    def _on_readable(self) -> None:
        conn = self._conn
        try:
            while conn is not None and conn.poll():
                self.ready = True  # the child's first message is an empty "ready"
                for seq, ok, value in loads(conn.recv_bytes()):
                    self._unsaved.pop(seq, None)
                    self._crashes.pop(seq, None)
                    fut = self._waiting.pop(seq, None)
                    if fut is not None and not fut.done():
                        if ok:
                            fut.set_result(value)
                        else:
                            fut.set_exception(StoreError(value))
        except (EOFError, OSError):
            self._child_gone()

    def _child_gone(self) -> None:
        assert self._loop is not None and self._conn is not None
        self._loop.remove_reader(self._conn.fileno())
        self._conn.close()
        self._conn = None
        self._proc.join(timeout=1)
        for seq in [s for s in self._waiting if s not in self._unsaved]:  # reads: lost
            fut = self._waiting.pop(seq)
            if not fut.done():
                fut.set_exception(StoreError("Процесс журнала звонков перезапускается"))
        if self._closing:
            return
        self.restarts += 1
        self._drop_a_crashing_write()
        young = time.monotonic() - self._started < 5.0
        log.error(
            "call-log process exited (code %s): starting a new one, %d unsaved writes go again",
            self._proc.exitcode,
            len(self._unsaved),
        )
        self._loop.call_later(RESTART_DELAY_S if young else 0.0, self._start)

    def _drop_a_crashing_write(self) -> None:
        """A write the process dies on (not an error: a crash) would kill every new child.
        The oldest unsaved write when a child dies is the suspect (resent writes go one per
        transaction); suspected MAX_CRASHES times, it is dropped and its caller told."""
        if not self._unsaved:
            return
        seq = next(iter(self._unsaved))
        self._crashes[seq] = self._crashes.get(seq, 0) + 1
        if self._crashes[seq] < MAX_CRASHES:
            return
        _, _, fn, _ = self._unsaved.pop(seq)
        del self._crashes[seq]
        log.error("call-log write %s dropped: the process died on it %d times", fn.__name__, MAX_CRASHES)
        fut = self._waiting.pop(seq, None)
        if fut is not None and not fut.done():
            why = f"процесс журнала падал на ней {MAX_CRASHES} раза"
            fut.set_exception(StoreError(f"Запись журнала звонков отброшена: {why}"))

    # -- requests ------------------------------------------------------------------------

    def _send(self, request: Request) -> None:
        if self._conn is None:
            return  # between two children: writes go with the restart, reads have failed
        self._watch()
        with contextlib.suppress(OSError):  # a dead child: _on_readable sees the EOF
            self._conn.send_bytes(dumps(request))

    def _request(
        self, kind: str, fn: Callable[..., Any], args: tuple[Any, ...], want: bool
    ) -> asyncio.Future[Any] | None:
        seq = next(self._seq)
        request: Request = (seq, kind, fn, args)
        fut: asyncio.Future[Any] | None = None
        if want:
            fut = asyncio.get_running_loop().create_future()
            if kind == "r" and self._conn is None:
                fut.set_exception(StoreError("Процесс журнала звонков перезапускается"))
                return fut
            self._waiting[seq] = fut
        if kind[0] == "w":
            self._unsaved[seq] = request
        self._send(request)
        return fut

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` in a read-only transaction of the call-log process."""
        fut = self._request("r", fn, args, want=True)
        assert fut is not None
        return await fut  # type: ignore[no-any-return]

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """A write, awaited (committed after every write submitted before it)."""
        fut = self._request("w!", fn, args, want=True)
        assert fut is not None
        return await fut  # type: ignore[no-any-return]

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """A write queued in order, not awaited; a failure is logged by the child."""
        self._request("w", fn, args, want=False)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child once it has committed every write sent to it."""
        self._closing = True
        if self._conn is not None:
            if self._watched and self._loop is not None:
                self._loop.remove_reader(self._conn.fileno())
            with contextlib.suppress(OSError):
                self._conn.send_bytes(dumps(None))
        self._proc.join(timeout)
        if self._proc.is_alive():
            log.error("call-log process did not stop in %.0f s: terminated", timeout)
            self._proc.terminate()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the writes the service makes ------------------------------------------------------

    def create_call(self, **fields: Any) -> None:
        self.submit(q.create_call, _started(fields))

    def create_call_for_number(self, lookup: str, **fields: Any) -> asyncio.Future[tuple[int | None, str]]:
        """Log a new call with the patient whose number it is (one transaction). Queued now,
        in order with the writes that follow; the future gives that patient's (id, name),
        or (None, "")."""
        fut = self._request("w", q.create_call, (_started(fields), lookup), want=True)
        assert fut is not None
        return fut

    def update_call(self, uid: str, **fields: Any) -> None:
        self.submit(q.update_call, uid, fields)

    async def end_call(self, uid: str, legs: list[dict[str, Any]] | None = None, **fields: Any) -> None:
        """The call's final state and all its legs, in one transaction, awaited."""
        await self.run(q.end_call, uid, legs, fields)

    def add_recording(self, uid: str, name: str, patient_id: int | None, user_id: int | None) -> None:
        self.submit(q.add_recording, uid, name, patient_id, user_id)

    async def finish_recording(self, name: str, state: str, duration_s: int | None) -> None:
        await self.run(q.finish_recording, name, state, duration_s)

    async def close_stale(self, keep_uids: set[str], reason: str) -> list[str]:
        return await self.run(q.close_stale, keep_uids, reason)


# ---------------------------------------------------------------- the call-log process


def _started(fields: dict[str, Any]) -> dict[str, Any]:
    """A call starts when it is submitted, not when its batch reaches the database."""
    return fields if "started_at" in fields else {**fields, "started_at": utcnow()}
