"""The data directory holds the database, generated secrets and logs: only its owner may
read it. Checked at every start: looser modes are tightened, and each change is reported."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_files(database_url: str) -> list[Path]:
    """The SQLite database and its side files, wherever DATABASE_URL puts them."""
    if not database_url.startswith("sqlite:///"):
        return []
    db = Path(database_url.removeprefix("sqlite:///"))
    return [db, *(db.with_name(db.name + suffix) for suffix in SQLITE_SIDE_FILES)]


def secure(data_dir: Path, database_url: str) -> list[str]:
    """Make the data dir 0700 and everything in it (and the SQLite files) 0600 / 0700;
    the paths that were changed, each logged as a warning."""
    changed: list[str] = []
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _create_private(sqlite_files(database_url)[:1])
    paths = [data_dir, *data_dir.rglob("*"), *(p for p in sqlite_files(database_url) if p.exists())]
    for path in dict.fromkeys(paths):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        if stat.S_IMODE(info.st_mode) & ~wanted:
            path.chmod(stat.S_IMODE(info.st_mode) & wanted)
            changed.append(str(path))
    # Not a process-wide umask: the Asterisk chroot built from this process must stay readable
    # by its own users. Inside a 0700 directory, later files are out of others' reach anyway,
    # and SQLite gives its -wal/-shm files the database file's mode.
    for path in changed:
        log.warning("права доступа к %s ограничены владельцем (были шире)", path)
    return changed


def _create_private(paths: list[Path]) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask)."""
    for path in paths:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
