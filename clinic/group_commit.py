"""Group commit: the webhooks' writes that arrive together share one transaction and one
durable commit (one fsync), and each caller is answered only after its write is committed.

A request thread announces itself (:meth:`GroupCommitter.expecting`), checks and parses its
callback on its own (no lock), then hands the write — a function of a Session that applies
the change and adds its exchange-log row — to :meth:`GroupCommitter.submit` and blocks. One
committer thread takes everything queued, and waits a little longer (at most `linger_s`)
only while announced requests are still in their check and will submit in a moment: never
on a guess, so a lone callback or the last of a burst is committed at once. It runs the
writes one after the other in one transaction, commits once and then releases every
caller of the group. When a write raises, the transaction is rolled
back and the group run again with each write inside its own SAVEPOINT: the failing one is
rolled back alone, its caller gets the exception (→ its own 503/4xx answer), the rest of
the group commits. (Savepoints only then: they cost two statements and the ORM's nested
bookkeeping per write, and the committer thread is the bottleneck.)

SQLite: the group opens with BEGIN IMMEDIATE (the pysqlite driver would otherwise let the
first SAVEPOINT open the transaction, and its RELEASE would commit on its own) and is
held under :func:`clinic.db.writer_lock`, so the process's other short writes (sampled
refusals) queue behind it instead of polling SQLite's busy handler. With synchronous=FULL
the fsync is the cost of a commit; sharing it is what lifts UpdateStatus throughput.

PostgreSQL: the committer works there as well (savepoints are standard; no process-wide
lock, its single thread is the only ordering), but the webhooks do not use it there
(webhooks/hook_log.py `commit_in_group`): PostgreSQL already flushes its WAL once for the
commits of concurrent transactions, and per-request transactions on eight connections
measured faster than one committer thread (bench/mango.py UpdateStatus: 234 against
165–207 req/s on 2 cores).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from clinic.db import writer_lock

log = logging.getLogger(__name__)

T = TypeVar("T")
Write = Callable[[Session], Any]


class GroupCommitter:
    """One committer thread per session factory; started on the first write and ended
    after `idle_s` without any, so an idle app (or a test's app) holds no thread."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        linger_s: float = 0.002,
        max_group: int = 200,
        idle_s: float = 5.0,
    ) -> None:
        self.factory = factory
        self.linger_s, self.max_group, self.idle_s = linger_s, max_group, idle_s
        self._queue: queue.SimpleQueue[tuple[Write, Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self._expected = 0  # announced requests that have not submitted (or given up) yet
        self._announced = threading.local()

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Around a request's check and its submit: while it is checking, the committer
        knows a write is on its way and holds the group open for it (up to linger_s)."""
        with self._lock:
            self._expected += 1
        self._announced.pending = True
        try:
            yield
        finally:
            self._arrived()

    def _arrived(self) -> None:
        if getattr(self._announced, "pending", False):
            self._announced.pending = False
            with self._lock:
                self._expected -= 1

    def submit(self, write: Callable[[Session], T]) -> T:
        """Run `write` in the next group; return its result once the group is committed,
        or raise what it (or the commit) raised. Nothing of a failed write is stored.

        `write` only works through the session (no other side effect): when a write of
        its group fails, the group is run again with each write in a savepoint."""
        future: Future[Any] = Future()
        with self._lock:
            self._queue.put((write, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="group-commit", daemon=True).start()
        self._arrived()  # only once queued: the committer that sees no one expected finds it
        return future.result()

    # ------------------------------------------------------------ committer thread

    def _run(self) -> None:
        while True:
            group = self._take()
            if not group:
                return
            self._commit(group)

    def _take(self) -> list[tuple[Write, Future[Any]]]:
        """The next group: the first write (waiting up to idle_s), what queued behind it,
        and what announced requests still checking submit within linger_s more."""
        try:
            first = self._queue.get(timeout=self.idle_s)
        except queue.Empty:
            with self._lock:  # a submit holding the lock has either queued or will restart us
                if self._queue.empty():
                    self._running = False
                    return []
            first = self._queue.get()
        group = [first]
        self._drain(group)
        deadline = time.monotonic() + self.linger_s
        while len(group) < self.max_group and self._expected > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:  # short waits: the one expected may also give up (a refusal) instead
                group.append(self._queue.get(timeout=min(left, 0.0005)))
            except queue.Empty:
                continue
            self._drain(group)
        self._drain(group)  # what was queued just before its sender stopped being expected
        return group

    def _drain(self, group: list[tuple[Write, Future[Any]]]) -> None:
        while len(group) < self.max_group:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _commit(self, group: list[tuple[Write, Future[Any]]]) -> None:
        try:
            with writer_lock(self.factory), self.factory() as session:
                results = self._fast(session, group) or self._isolated(session, group)
                session.commit()
        except BaseException as exc:  # the commit (or the connection) failed: nothing is stored
            log.warning("групповая запись не удалась (%s)", exc.__class__.__name__)
            for _write, future in group:
                future.set_exception(exc)
            return
        for (_write, future), (ok, value) in zip(group, results, strict=True):
            if ok:  # released only now: the write is durable
                future.set_result(value)
            else:
                future.set_exception(value)

    @staticmethod
    def _fast(session: Session, group: list[tuple[Write, Future[Any]]]) -> list[tuple[bool, Any]] | None:
        """Every write flushed in turn with no savepoints (they cost two statements and the
        ORM's nested bookkeeping per write); None, all rolled back, if any of them failed."""
        _begin(session)
        results: list[tuple[bool, Any]] = []
        try:
            for write, _future in group:
                results.append((True, write(session)))
                session.flush()
        except Exception:  # noqa: BLE001 — whose it is, the isolated pass tells
            session.rollback()
            return None
        return results

    @staticmethod
    def _isolated(session: Session, group: list[tuple[Write, Future[Any]]]) -> list[tuple[bool, Any]]:
        """The group again, each write in its own SAVEPOINT: a failing one is rolled back
        alone and its caller gets its exception."""
        _begin(session)
        return [_in_savepoint(session, write) for write, _future in group]


def _begin(session: Session) -> None:
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # a real transaction first, so the savepoints nest inside it (see the module doc)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _in_savepoint(session: Session, write: Write) -> tuple[bool, Any]:
    """(True, result) or (False, the exception), the failed write rolled back alone."""
    try:
        with session.begin_nested():
            return True, write(session)
    except Exception as exc:  # noqa: BLE001 — it belongs to that caller, not to the group
        return False, exc
