"""clinic.db.writer_lock: one lock per SQLite engine, shared by its session factories; none
for PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from clinic.db import make_engine, make_session_factory, writer_lock


def test_sqlite_factories_of_one_engine_share_one_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    other = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    first, second = make_session_factory(engine), make_session_factory(engine)
    lock = writer_lock(first)
    assert lock is writer_lock(second)  # the webhook's threads queue on the same lock
    assert writer_lock(make_session_factory(other)) is not lock
    with lock:
        refused = threading.Event()
        worker = threading.Thread(target=lambda: writer_lock(second).acquire(timeout=0.2) or refused.set())
        worker.start()
        worker.join()
        assert refused.is_set()  # the second writer could not get in while the first held it


def test_postgresql_needs_no_lock() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/unused")  # not connected
    assert isinstance(writer_lock(make_session_factory(engine)), contextlib.nullcontext)
