"""Shared fixtures: a migrated database per test session (SQLite file, or PostgreSQL when
DATABASE_URL is set), a clean set of tables per test, and a Config that points at it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import make_engine, make_session_factory, migrate
from clinic.models import Base


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mis-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    if not database_url.startswith("sqlite"):
        # Start PostgreSQL runs from an empty schema so migrations are exercised for real.
        eng = make_engine(database_url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        eng.dispose()
    migrate(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture()
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A session factory over freshly emptied tables."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    yield make_session_factory(engine)


@pytest.fixture()
def server_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Run the test's process in another time zone (TZ + tzset), restored after: every time a
    person sees must be the clinic's, whatever zone the server runs in."""

    def move(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield move
    monkeypatch.undo()
    time.tzset()


@pytest.fixture()
def server_in_new_york(server_zone: Callable[[str], None]) -> None:
    """The usual case of the tests: the server in New York, the clinic elsewhere."""
    server_zone("America/New_York")


@pytest.fixture()
def config(data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("MIS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Config.from_env()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# One Playwright per test module: its sync API cannot run twice at once in a process, and
# while it runs it keeps an event loop running in the main thread, so asyncio.run() fails
# there. Module scope confines that to the browser modules (tests/browser, and the
# telephony browser tests in tests/pbx) instead of every test that comes after them.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # `make test` installs chromium; a missing browser is a broken setup, not a reason to skip.
    assert CHROMIUM.exists(), "Debian's chromium is missing at /usr/bin/chromium (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def listener(config: Config, sessions: sessionmaker[Session]) -> Iterator[Any]:
    """ari_app's events listener (and its call-log process) on free ports, without Asterisk."""
    from eventskit import EventsListener

    events = EventsListener(config)
    try:
        yield events
    finally:
        events.stop()
