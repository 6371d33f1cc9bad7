"""What the public webhooks (:55055) write to «Журнал обмена» and answer: text any database
stores and JSON any client reads, whatever a sender put in its request.

A body may carry a lone surrogate (JSON ``"\\ud800"`` decodes to one), which neither the
UTF-8 of SQLite/PostgreSQL nor the HTTP answer can encode, or a NUL, which PostgreSQL text
refuses. Both are kept, escaped, so the log row is still written and still shows them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app
from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction, writer_lock
from clinic.group_commit import GroupCommitter
from clinic.models import ExchangeLogEntry, utcnow

log = logging.getLogger(__name__)

MAX_LOGGED = 20_000  # characters of a payload or response kept in the log

T = TypeVar("T")
_COMMITTER_LOCK = threading.Lock()


def storable(text: str) -> str:
    """`text` with NUL and lone surrogates as backslash escapes (\\x00 → ``\\u0000``)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def as_json(body: Any) -> str:
    """Readable JSON (Cyrillic as is) that is always encodable."""
    return storable(json.dumps(body, ensure_ascii=False))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(as_json(body), status=status, mimetype="application/json", headers=headers or {})


def exchange_row(
    *, owner: str, payload: str, response: str, elapsed_ms: int, http_status: int
) -> ExchangeLogEntry:
    return ExchangeLogEntry(
        at=utcnow(),
        direction="in",
        owner=owner[:100],
        payload=storable(payload[:MAX_LOGGED]),
        response=storable(response[:MAX_LOGGED]),
        elapsed_ms=elapsed_ms,
        http_status=http_status,
    )


_INSERT_ROW = insert(ExchangeLogEntry.__table__)
_ROW_FIELDS = ("at", "direction", "owner", "payload", "response", "elapsed_ms", "http_status")


def add_row(session: Session, row: ExchangeLogEntry) -> None:
    """`row` written in `session`'s transaction with one INSERT: the group committer runs
    hundreds of these a second, and the ORM's unit of work cost more than the statement."""
    session.execute(_INSERT_ROW, {name: getattr(row, name) for name in _ROW_FIELDS})


def store_row(sessions: sessionmaker[Session], row: ExchangeLogEntry) -> None:
    """One log row in its own short transaction (a refusal, or after a failed write). The
    log must not break the answer: with the database down, one warning line says so."""
    try:
        with writer_lock(sessions), sessions() as session:
            session.add(row)
            session.commit()
    except SQLAlchemyError as exc:
        log.warning("журнал обмена: запись не удалась (%s)", exc.__class__.__name__)


class RefusalSampler:
    """Requests refused before they proved who sent them (no token, a bad signature, a
    wrong method, a body too large) are counted, and one per `every_s` seconds and sender
    is stored, naming how many like it were skipped: a flood cannot fill «Журнал обмена»
    or keep the database writer busy, and an operator still sees that it happens."""

    MAX_KEYS = 1000  # senders tracked at once; past that, everyone shares one sample

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def take(self, key: str) -> int | None:
        """How many were skipped since the last stored one, if this one is to be stored;
        None if it is only counted."""
        with self._lock:
            if key not in self._last and len(self._last) >= self.MAX_KEYS:
                key = "*"
            now = self.clock()
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._skipped.pop(key, 0)


def store_refusal(sessions: sessionmaker[Session], row: ExchangeLogEntry, sender: str) -> bool:
    """Store an unauthenticated refusal if the app's sampler lets it through; whether it did."""
    sampler: RefusalSampler = current_app.extensions.setdefault("mis_refusals", RefusalSampler())
    skipped = sampler.take(f"{row.owner} {row.http_status} {sender}")
    if skipped is None:
        return False
    if skipped:
        row.payload = storable(f"(ещё {skipped} таких же отказов с этого адреса не записаны)\n") + row.payload
    store_row(sessions, row)
    return True


def commit_in_group(sessions: sessionmaker[Session], write: Callable[[Session], T]) -> T:
    """Run an authenticated callback's write (its change and its log row) durably; returns
    once it is committed, raises what the write or the commit raised (nothing stored then).

    SQLite: in the app's group commit (clinic/group_commit.py), one writer and one fsync
    for the callbacks that arrive together. PostgreSQL: in its own transaction, no lock —
    the server already flushes the WAL once for commits that come together, and eight
    connections writing side by side measured faster there than one committer thread
    (bench/mango.py: 234 against 165–207 req/s). The write must not touch `request`: on
    SQLite it runs on the committer thread."""
    committer = _committer(sessions)
    if committer is None:
        with transaction(sessions) as session:
            return write(session)
    return committer.submit(write)


def expecting_write(sessions: sessionmaker[Session]) -> contextlib.AbstractContextManager[None]:
    """Around a callback's check and its :func:`commit_in_group`: the group committer holds
    its next group open a moment for a write it knows is coming (SQLite; nothing else)."""
    committer = _committer(sessions)
    return contextlib.nullcontext() if committer is None else committer.expecting()


def _committer(sessions: sessionmaker[Session]) -> GroupCommitter | None:
    if not _is_sqlite(sessions):
        return None
    with _COMMITTER_LOCK:  # one committer per app, however many first requests race
        committer: GroupCommitter | None = current_app.extensions.get("mis_group_commit")
        if committer is None or committer.factory is not sessions:
            committer = current_app.extensions["mis_group_commit"] = GroupCommitter(sessions)
    return committer


def _is_sqlite(sessions: sessionmaker[Session]) -> bool:
    engine = sessions.kw.get("bind")
    return isinstance(engine, Engine) and engine.dialect.name == "sqlite"
