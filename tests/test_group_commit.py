"""The webhooks' group commit (clinic/group_commit.py): writes queued together share one
commit, a failing write fails alone, nothing of a group is visible before its commit, and
a caller returns only once its write is visible to any fresh session."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import eventskit
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.group_commit import GroupCommitter
from clinic.models import ExchangeLogEntry, utcnow

WAIT = 30.0


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    eventskit.wait_until(predicate, WAIT, what, step=0.005)


def row(owner: str) -> ExchangeLogEntry:
    return ExchangeLogEntry(
        at=utcnow(), direction="in", owner=owner, payload="", response="", elapsed_ms=0, http_status=200
    )


def stored(sessions: sessionmaker[Session], owner: str) -> int:
    with sessions() as session:  # a fresh session: sees only what is committed
        return session.scalar(select(func.count()).where(ExchangeLogEntry.owner == owner)) or 0


@pytest.fixture()
def commits(engine: Engine) -> Iterator[list[int]]:
    seen: list[int] = []

    def on_commit(_conn: Any) -> None:
        seen.append(1)

    event.listen(engine, "commit", on_commit)
    yield seen
    event.remove(engine, "commit", on_commit)


@pytest.fixture()
def committer(sessions: sessionmaker[Session]) -> GroupCommitter:
    return GroupCommitter(sessions, idle_s=0.5)


def hold_committer(
    committer: GroupCommitter, pool: ThreadPoolExecutor
) -> tuple[threading.Event, Future[Any]]:
    """A first write that keeps the committer busy until the returned gate opens, so that
    what is submitted meanwhile queues up and forms the next group."""
    gate, entered = threading.Event(), threading.Event()

    def blocker(session: Session) -> str:
        entered.set()
        assert gate.wait(WAIT)
        session.add(row("gc-blocker"))
        return "blocker"

    future = pool.submit(committer.submit, blocker)
    assert entered.wait(WAIT)
    return gate, future


def test_queued_writes_share_one_commit_and_a_failure_fails_alone(
    committer: GroupCommitter, sessions: sessionmaker[Session], commits: list[int]
) -> None:
    n = 20
    seen_after_return: dict[int, int] = {}

    def good(i: int) -> Callable[[Session], int]:
        def write(session: Session) -> int:
            session.add(row(f"gc-{i}"))
            return i

        return write

    def bad(session: Session) -> int:
        session.add(row("gc-bad"))
        session.flush()  # really written inside the savepoint, then rolled back with it
        raise ValueError("эта запись ошибочна")

    def caller(i: int) -> int:
        result = committer.submit(bad if i == n // 2 else good(i))
        seen_after_return[i] = stored(sessions, f"gc-{i}")  # visible the moment it returns
        return result

    with ThreadPoolExecutor(n + 1) as pool:
        gate, blocker = hold_committer(committer, pool)
        futures = [pool.submit(caller, i) for i in range(n)]
        wait_until(lambda: committer._queue.qsize() == n, "all writes queued behind the blocker")
        commits.clear()
        gate.set()
        assert blocker.result(WAIT) == "blocker"
        results = {i: f.exception(WAIT) or f.result() for i, f in enumerate(futures)}

    assert len(commits) == 2  # the blocker alone, then the n queued writes together
    assert isinstance(results.pop(n // 2), ValueError)
    assert results == {i: i for i in range(n) if i != n // 2}
    assert stored(sessions, "gc-bad") == 0
    assert seen_after_return == {i: 1 for i in range(n) if i != n // 2}


def test_nothing_of_a_group_is_visible_before_its_commit(
    committer: GroupCommitter, sessions: sessionmaker[Session], commits: list[int]
) -> None:
    """A group is one transaction: on SQLite the savepoints nest in BEGIN IMMEDIATE (else
    the first savepoint's RELEASE would commit alone, and a failure could not be isolated
    from what was already durable)."""
    visible_inside: list[int] = []

    def first(session: Session) -> None:
        session.add(row("gc-first"))

    def failing(session: Session) -> None:
        raise RuntimeError("ошибка одной записи")

    def probe(session: Session) -> None:
        visible_inside.append(stored(sessions, "gc-first"))  # another connection's view
        session.add(row("gc-probe"))

    with ThreadPoolExecutor(4) as pool:
        gate, blocker = hold_committer(committer, pool)
        a = pool.submit(committer.submit, first)
        wait_until(lambda: committer._queue.qsize() == 1, "first queued")
        b = pool.submit(committer.submit, failing)
        wait_until(lambda: committer._queue.qsize() == 2, "failing queued")
        c = pool.submit(committer.submit, probe)
        wait_until(lambda: committer._queue.qsize() == 3, "probe queued")
        commits.clear()
        gate.set()
        blocker.result(WAIT)
        assert a.result(WAIT) is None
        assert isinstance(b.exception(WAIT), RuntimeError)
        assert c.result(WAIT) is None

    assert visible_inside and set(visible_inside) == {0}  # the group is run twice: see _fast
    assert len(commits) == 2  # the blocker, then the group
    assert stored(sessions, "gc-first") == 1 and stored(sessions, "gc-probe") == 1


def test_an_idle_committer_answers_at_once_and_ends_its_thread(
    committer: GroupCommitter, sessions: sessionmaker[Session]
) -> None:
    assert committer.submit(lambda s: s.add(row("gc-alone"))) is None
    assert stored(sessions, "gc-alone") == 1
    wait_until(lambda: not committer._running, "the idle thread to end")
    assert committer.submit(lambda s: s.add(row("gc-again"))) is None  # restarted on demand
    assert stored(sessions, "gc-again") == 1


def test_the_group_waits_for_an_announced_write_and_not_for_one_that_gives_up(
    sessions: sessionmaker[Session], commits: list[int]
) -> None:
    """A request that announced itself (it is still checking its callback) is waited for,
    so its write joins the group; one that gives up (a refusal) releases the group at once.
    linger_s is far above any test's run time: the group can only close on those signals."""
    committer = GroupCommitter(sessions, idle_s=0.5, linger_s=WAIT * 10)
    checking, submit_now, leave_now = threading.Event(), threading.Event(), threading.Event()

    def announced(write_it: bool) -> None:
        with committer.expecting():
            checking.set()
            if write_it:
                assert submit_now.wait(WAIT)
                committer.submit(lambda s: s.add(row("gc-announced")))
            else:
                assert leave_now.wait(WAIT)

    with ThreadPoolExecutor(2) as pool:
        late = pool.submit(announced, True)
        assert checking.wait(WAIT)
        commits.clear()
        early = pool.submit(committer.submit, lambda s: s.add(row("gc-early")))
        wait_until(lambda: committer._queue.qsize() == 0, "the early write taken into a group")
        assert stored(sessions, "gc-early") == 0  # held open for the announced one
        submit_now.set()
        assert early.result(WAIT) is None and late.result(WAIT) is None
        assert len(commits) == 1  # one group, one commit

        checking.clear()
        quitter = pool.submit(announced, False)
        assert checking.wait(WAIT)
        alone = pool.submit(committer.submit, lambda s: s.add(row("gc-alone")))
        wait_until(lambda: committer._queue.qsize() == 0, "the lone write taken into a group")
        leave_now.set()  # the announced request is refused: nothing more will come
        assert alone.result(WAIT) is None and quitter.result(WAIT) is None
    assert stored(sessions, "gc-announced") == 1 and stored(sessions, "gc-alone") == 1
