"""The data directory and the SQLite files are private to their owner (issue 12, point 5)."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from clinic import datadir
from clinic.db import make_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_loose_modes_are_tightened_and_reported(tmp_path: Path) -> None:
    data = tmp_path / "var"
    (data / "pbx").mkdir(parents=True)
    for name in ("mis.db", "mis.db-wal", "mis.db-shm", "secrets.json", "pbx/asterisk.out"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    data.chmod(0o755)
    changed = datadir.secure(data, f"sqlite:///{data / 'mis.db'}")
    assert _mode(data) == 0o700 and _mode(data / "pbx") == 0o700
    for name in ("mis.db", "mis.db-wal", "mis.db-shm", "secrets.json", "pbx/asterisk.out"):
        assert _mode(data / name) == 0o600, name
    assert str(data / "mis.db") in changed
    assert datadir.secure(data, f"sqlite:///{data / 'mis.db'}") == []  # nothing left to fix


def test_a_new_database_and_its_wal_are_born_private(tmp_path: Path) -> None:
    data, db = tmp_path / "var", tmp_path / "elsewhere" / "clinic.db"
    url = f"sqlite:///{db}"
    datadir.secure(data, url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        wal = db.with_name(db.name + "-wal")
        assert _mode(db) == 0o600
        if wal.exists():
            assert _mode(wal) == 0o600
    engine.dispose()


def test_other_databases_are_left_alone(tmp_path: Path) -> None:
    assert datadir.secure(tmp_path / "var", "postgresql://u@127.0.0.1/db") == []
    assert _mode(tmp_path / "var") == 0o700
