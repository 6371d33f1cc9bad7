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
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ari_app.calls import queries as q
from clinic.db import make_engine, make_session_factory, transaction
from clinic.models import utcnow

T = TypeVar("T")
log = logging.getLogger(__name__)

# (seq, kind, fn, args); kind: "w" a queued write, "w!" a write someone waits for (its group
# is committed at once), "r" a read
Request = tuple[int, str, Callable[..., Any], tuple[Any, ...]]
Reply = tuple[int, bool, Any]  # (seq, ok, result | error text)

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
                for seq, ok, value in _loads(conn.recv_bytes()):
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
            self._conn.send_bytes(_dumps(request))

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
                self._conn.send_bytes(_dumps(None))
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

GROUP = 500  # writes per transaction at most
BATCH_WAIT_S = 0.1  # a queued write waits this long for others to share its transaction
WRITER_NICE = 19
READERS = 4


def serve(conn: Connection, database_url: str) -> None:
    """The child's main: answer what `conn` brings until None, EOF (the parent is gone) or
    SIGTERM, then commit what is queued and exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s call-log %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    stopping = threading.Event()

    def on_term(_sig: int, _frame: object) -> None:
        stopping.set()
        raise _Stop

    signal.signal(signal.SIGTERM, on_term)
    sessions = make_session_factory(make_engine(database_url))
    send_lock = threading.Lock()

    def reply(replies: list[Reply]) -> None:
        with send_lock, contextlib.suppress(OSError):  # OSError: the parent is gone
            try:
                conn.send_bytes(_dumps(replies))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                # a result that does not pickle is a bug in a query: its request fails,
                # this thread goes on
                log.error("call log reply could not be sent: %s", exc)
                failed = [(seq, False, f"ответ не передаётся: {exc}") for seq, _, _ in replies]
                conn.send_bytes(_dumps(failed))

    # a database that cannot be opened shows in the requests' errors
    with contextlib.suppress(Exception), sessions() as session:
        session.execute(text("SELECT 1"))
    reply([])  # ready

    writes: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
    writer = threading.Thread(target=_write_loop, args=(sessions, writes, reply), name="call-log-writer")
    writer.start()
    readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="call-log-read")
    try:
        while not stopping.is_set():
            request = _loads(conn.recv_bytes())
            if request is None:
                break
            if request[1][0] == "w":
                writes.put(request)
            else:
                readers.submit(_read, sessions, request, reply)
    except (EOFError, OSError, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(EOFError, OSError):
            while conn.poll():  # what was already sent is still committed
                request = _loads(conn.recv_bytes())
                if request is not None and request[1][0] == "w":
                    writes.put(request)
        writes.put(None)
        writer.join()
        readers.shutdown(wait=True)


class _Stop(Exception):
    pass


def _read(sessions: sessionmaker[Session], request: Request, reply: Callable[[list[Reply]], None]) -> None:
    seq, _, fn, args = request
    try:
        with transaction(sessions) as session:
            result = fn(session, *args)
    except Exception as exc:
        log.exception("call log read %s failed", fn.__name__)
        reply([(seq, False, f"{type(exc).__name__}: {exc}")])
        return
    reply([(seq, True, result)])


def _write_loop(
    sessions: sessionmaker[Session],
    writes: queue.SimpleQueue[Request | None],
    reply: Callable[[list[Reply]], None],
) -> None:
    # the log is written behind the calls: under load this thread yields the CPU to Asterisk
    # and the event loop (nice is per thread on Linux; the receiver and the readers keep the
    # normal priority). Not SCHED_IDLE: starved while holding the GIL, it would stall the
    # receiver thread and so, through a full pipe, ari_app itself
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
    stop = False
    while not stop:
        first = writes.get()
        if first is None:
            return
        group, stop = _gather(writes, first)
        reply(_write_group(sessions, group))


def _gather(writes: queue.SimpleQueue[Request | None], first: Request) -> tuple[list[Request], bool]:
    """`first` and the writes that come within BATCH_WAIT_S of it (or until one that someone
    waits for): one transaction. Returns the group, and whether the queue has ended."""
    group = [first]
    deadline = time.monotonic() + BATCH_WAIT_S
    while len(group) < GROUP and group[-1][1] != "w!":
        try:
            item = writes.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if item is None:
            return group, True
        group.append(item)
    return group, False


def _write_group(sessions: sessionmaker[Session], group: list[Request]) -> list[Reply]:
    """One transaction for the group; if it fails, each write alone, so one bad write costs
    only itself."""
    try:
        with transaction(sessions) as session:
            results = _Batch(session).run(group)
        return [(seq, True, result) for (seq, _, _, _), result in zip(group, results, strict=True)]
    except Exception as exc:
        if len(group) > 1:
            return [r for request in group for r in _write_group(sessions, [request])]
        seq, _, fn, _ = group[0]
        log.exception("call log write %s failed", fn.__name__)
        return [(seq, False, f"{type(exc).__name__}: {exc}")]


class _Batch:
    """A group's writes in order, with new calls inserted together: a call's later changes
    in the same group are folded into its row before it is written, and the rows go in one
    multi-row INSERT per column set. In a burst of calls a statement per write (SQLAlchemy
    builds and runs each) was most of this process's CPU. Any other write first flushes the
    rows held, so it sees every call logged before it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: dict[str, dict[str, Any]] = {}  # uid -> the row to insert
        self.owners: dict[str, tuple[int | None, str]] = {}  # number -> (patient id, name)

    def run(self, group: list[Request]) -> list[Any]:
        results: list[Any] = []
        for _, _, fn, args in group:
            if fn is q.create_call:
                results.append(self._create(*args))
            elif fn is q.update_call and args[0] in self.rows:
                self.rows[args[0]].update(args[1])
                results.append(None)
            else:
                self._flush()
                results.append(fn(self.session, *args))
        self._flush()
        return results

    def _create(self, fields: dict[str, Any], lookup_number: str | None = None) -> tuple[int | None, str]:
        found: tuple[int | None, str] = (None, "")
        if lookup_number:
            if lookup_number not in self.owners:  # a number is looked up once a transaction
                self.owners[lookup_number] = q.number_owner(self.session, lookup_number)
            found = self.owners[lookup_number]
        if fields["uid"] in self.rows:
            self._flush()  # the same uid twice: the second insert fails, as alone it would
        self.rows[fields["uid"]] = q.call_row(fields, found)
        return found

    def _flush(self) -> None:
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in self.rows.values():
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        self.rows = {}
        for rows in by_columns.values():
            q.insert_calls(self.session, rows)


def _dumps(obj: Any) -> bytes:
    # plain pickle over the pipe's bytes: Connection.send's ForkingPickler (built for sockets
    # and file descriptors, which we never send) cost twice as much a message
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> Any:
    return pickle.loads(data)


def _started(fields: dict[str, Any]) -> dict[str, Any]:
    """A call starts when it is submitted, not when its batch reaches the database."""
    return fields if "started_at" in fields else {**fields, "started_at": utcnow()}
