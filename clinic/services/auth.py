"""Password login with the lock-out of «ЛПУ → Параметры → Безопасность».

After `lockout_attempts` wrong passwords in a row (when «Блокировать учетные записи
пользователей» is on) the account is locked: even the right password is refused until an
admin unlocks it on «Пользователи системы». The caller commits, so the counter survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy.orm import Session

from clinic.models import User, utcnow
from clinic.security import hash_password, verify_password
from clinic.services.settings import get_settings
from clinic.services.users import find_by_login, is_locked

BAD_CREDENTIALS = "Неверный логин или пароль"
EMPTY_CREDENTIALS = "Введите логин и пароль"
LOCKED = "Учетная запись заблокирована после неудачных попыток ввода пароля. Обратитесь к администратору."
INACTIVE = "Учетная запись отключена. Обратитесь к администратору."


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


@cache
def _dummy_hash() -> str:
    return hash_password("no such user: equalise the response time")


def authenticate(session: Session, login: str, password: str) -> LoginResult:
    """Check a login attempt and record its outcome on the user row (flushed, not committed)."""
    login = (login or "").strip()
    if not login or not password:
        return LoginResult(None, EMPTY_CREDENTIALS)
    user = find_by_login(session, login)
    if user is None:
        # Spend the same hashing time as for a real user, so timing does not reveal logins.
        verify_password(_dummy_hash(), password)
        return LoginResult(None, BAD_CREDENTIALS)
    if is_locked(user):
        return LoginResult(None, LOCKED)
    if not verify_password(user.password_hash, password):
        settings = get_settings(session)
        user.failed_logins = (user.failed_logins or 0) + 1
        if settings.lockout_enabled and user.failed_logins >= settings.lockout_attempts:
            user.locked_at = utcnow()
            session.flush()
            return LoginResult(None, LOCKED)
        session.flush()
        return LoginResult(None, BAD_CREDENTIALS)
    # Only a caller who knows the password learns that the account is disabled.
    if not user.is_active:
        return LoginResult(None, INACTIVE)
    user.failed_logins = 0
    session.flush()
    return LoginResult(user)
