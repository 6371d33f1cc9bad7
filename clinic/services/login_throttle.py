"""Growing delays after failed logins, per source address and per login name.

A guesser gets a few free attempts, then waits 2, 4, 8 … seconds between attempts (capped),
and the count starts over after an hour without failures. Login names that do not exist are
throttled exactly like real ones, so the answers never tell which logins exist. The rows
live in the database, so every web worker thread and process sees the same counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.clock import as_aware
from clinic.models import LoginThrottle


@dataclass(frozen=True)
class Rule:
    prefix: str
    free: int  # failures without any delay
    cap: timedelta  # the longest delay between two attempts


ADDRESS = Rule("addr:", free=30, cap=timedelta(minutes=15))  # a clinic's registrars may share one NAT address
LOGIN = Rule("login:", free=3, cap=timedelta(minutes=5))
FORGET_AFTER = timedelta(hours=1)


def address_key(addr: str) -> str:
    return ADDRESS.prefix + (addr or "?")[:100]


def login_key(login: str) -> str:
    return LOGIN.prefix + login.strip().lower()[:150]


def delay(failures: int, rule: Rule) -> timedelta:
    if failures <= rule.free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - rule.free, 20)), rule.cap)


def _rule(key: str) -> Rule:
    return ADDRESS if key.startswith(ADDRESS.prefix) else LOGIN


def _live(row: LoginThrottle | None, now: datetime) -> LoginThrottle | None:
    """The row, unless its failures are old enough to be forgotten."""
    if row is None or as_aware(row.updated_at) < now - FORGET_AFTER:
        return None
    return row


def failures(session: Session, key: str, now: datetime) -> int:
    row = _live(session.get(LoginThrottle, key), now)
    return row.failures if row else 0


def wait_seconds(session: Session, keys: Iterable[str], now: datetime) -> int:
    """How long the caller must wait before the next attempt (0: may try now)."""
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(list(keys)))).all()
    waits = [
        (as_aware(row.blocked_until) - now).total_seconds()
        for row in rows
        if row.blocked_until is not None and _live(row, now) is not None
    ]
    longest = max(waits, default=0.0)
    return int(longest) + 1 if longest > 0 else 0


def record_failure(session: Session, key: str, now: datetime, *, block_for: timedelta | None = None) -> int:
    """Count one failure under `key` and set its delay; the failure count. The caller commits."""
    row = _row_for_update(session, key)
    row.failures = (row.failures if _live(row, now) else 0) + 1
    pause = block_for if block_for is not None else delay(row.failures, _rule(key))
    row.blocked_until = now + pause if pause else None
    row.updated_at = now
    session.flush()
    return row.failures


def clear(session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def forget_old(session: Session, now: datetime) -> None:
    """Drop rows nobody has failed on for a day (keeps the table small)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < now - timedelta(days=1)))


def _row_for_update(session: Session, key: str) -> LoginThrottle:
    row = session.get(LoginThrottle, key, with_for_update=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():  # two threads may insert the same key at once
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
        return row
    except IntegrityError:
        row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
        assert row is not None
        return row
