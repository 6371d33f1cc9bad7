"""The call-log process itself (the child of ari_app/calls/store.py, which describes the
whole): a receiver thread takes requests off the pipe at once, one writer thread commits the
writes in order and in batches (`_Batch`), a few reader threads answer the reads."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ari_app.calls import queries as q
from clinic.db import make_engine, make_session_factory, transaction

# (seq, kind, fn, args); kind: "w" a queued write, "w!" a write someone waits for (its group
# is committed at once), "r" a read
Request = tuple[int, str, Callable[..., Any], tuple[Any, ...]]
Reply = tuple[int, bool, Any]  # (seq, ok, result | error text)

log = logging.getLogger(__name__)

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
                conn.send_bytes(dumps(replies))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                # a result that does not pickle is a bug in a query: its request fails,
                # this thread goes on
                log.error("call log reply could not be sent: %s", exc)
                failed = [(seq, False, f"ответ не передаётся: {exc}") for seq, _, _ in replies]
                conn.send_bytes(dumps(failed))

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
            request = loads(conn.recv_bytes())
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
                request = loads(conn.recv_bytes())
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


def dumps(obj: Any) -> bytes:
    # plain pickle over the pipe's bytes: Connection.send's ForkingPickler (built for sockets
    # and file descriptors, which we never send) cost twice as much a message
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return pickle.loads(data)
