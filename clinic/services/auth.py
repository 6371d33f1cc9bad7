"""Password login: growing delays after failures, and the lock-out of «ЛПУ → Параметры →
Безопасность».

- Every failure counts against the source address and the login name (login_throttle):
  after a few, the next attempt must wait, longer each time (429 with Retry-After).
- After `lockout_attempts` wrong passwords for one login name (when «Блокировать учетные
  записи пользователей» is on) that name is locked for LOCK_DURATION; a real account is
  marked locked (admins see it and can unlock it at once) and its sessions end. The lock
  ends by itself: an anonymous guesser cannot keep the clinic's staff out for good.
- A login that does not exist is throttled and "locked" like one that does, and a wrong
  login and a wrong password get the same message: the answers never reveal which logins
  exist. Only someone who knows the password learns that an account is disabled.
The caller commits, so the counters survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy.orm import Session

from clinic.clock import as_aware
from clinic.models import User, utcnow
from clinic.security import hash_password, verify_password
from clinic.services import login_throttle as throttle
from clinic.services.settings import read_settings
from clinic.services.users import LOCK_DURATION, find_by_login, is_locked, lock_user

BAD_CREDENTIALS = "Неверный логин или пароль"
EMPTY_CREDENTIALS = "Введите логин и пароль"
LOCKED = (
    "Вход временно заблокирован после неудачных попыток ввода пароля. "
    "Повторите через {minutes} мин. или обратитесь к администратору."
)
THROTTLED = "Слишком много неудачных попыток входа. Повторите через {seconds} с."
INACTIVE = "Учетная запись отключена. Обратитесь к администратору."


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None
    retry_after: int = 0  # seconds, when the attempt was refused without checking the password

    @property
    def ok(self) -> bool:
        return self.user is not None


@cache
def _dummy_hash() -> str:
    return hash_password("no such user: equalise the response time")


def _minutes(seconds: float) -> int:
    return max(1, int(seconds + 59) // 60)


def authenticate(
    session: Session, login: str, password: str, addr: str = "", now: datetime | None = None
) -> LoginResult:
    """Check a login attempt from `addr` and record its outcome (flushed, not committed)."""
    now = now or utcnow()
    login = (login or "").strip()
    if not login or not password:
        return LoginResult(None, EMPTY_CREDENTIALS)
    name_key, addr_key = throttle.login_key(login), throttle.address_key(addr)
    settings = read_settings(session)
    wait = throttle.wait_seconds(session, (name_key, addr_key), now)
    if wait:
        failed = throttle.failures(session, name_key, now)
        locked = settings.lockout_enabled and failed >= settings.lockout_attempts
        message = LOCKED.format(minutes=_minutes(wait)) if locked else THROTTLED.format(seconds=wait)
        return LoginResult(None, message, retry_after=wait)

    user = find_by_login(session, login)
    if user is not None and is_locked(user, now):
        left = (as_aware(user.locked_at) + LOCK_DURATION - now).total_seconds() if user.locked_at else 0
        return LoginResult(None, LOCKED.format(minutes=_minutes(left)), retry_after=int(left) + 1)
    # Spend the same hashing time for a login that does not exist, so timing reveals nothing.
    right = verify_password(user.password_hash if user else _dummy_hash(), password) and user is not None
    if not right:
        return _failure(session, user, name_key, addr_key, now)
    # Only a caller who knows the password learns that the account is disabled.
    if not user.is_active:
        return LoginResult(None, INACTIVE)
    user.failed_logins = 0
    throttle.clear(session, name_key)
    session.flush()
    return LoginResult(user)


def _failure(session: Session, user: User | None, name_key: str, addr_key: str, now: datetime) -> LoginResult:
    settings = read_settings(session)
    throttle.record_failure(session, addr_key, now)
    count = throttle.failures(session, name_key, now) + 1
    lock = settings.lockout_enabled and count >= settings.lockout_attempts
    throttle.record_failure(session, name_key, now, block_for=LOCK_DURATION if lock else None)
    if user is not None:
        user.failed_logins = (user.failed_logins or 0) + 1
        if lock:
            lock_user(user, now)
    throttle.forget_old(session, now)
    session.flush()
    if lock:
        return LoginResult(None, LOCKED.format(minutes=_minutes(LOCK_DURATION.total_seconds())))
    return LoginResult(None, BAD_CREDENTIALS)

