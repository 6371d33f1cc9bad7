"""«Пользователи системы»: validation and changes of users and their IP telephony credentials.

Shared by the admin pages and the REST API. The login password is stored as a werkzeug hash
and the SIP password only as the MD5 digest PJSIP needs, MD5(sip_id:realm:password); neither
is ever returned. Empty password fields on edit mean "keep the stored one".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinic.clock import as_aware
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, USER_ROLES, User, utcnow
from clinic.security import hash_password, sip_md5_cred, weak_password_reason
from clinic.services import ValidationError, as_text, parse_bool
from clinic.services.login_throttle import clear as clear_throttle
from clinic.services.login_throttle import login_key
from clinic.services.settings import get_settings

# Latin only, so lower() compares logins the same way on SQLite and PostgreSQL.
_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}")
_EXTENSION = re.compile(r"[0-9]{2,6}")
# Becomes a PJSIP endpoint/auth section name and the digest user: no spaces, ':' or brackets.
_SIP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}")
PASSWORD_MIN = 6
# A lock after wrong passwords ends by itself (an admin can end it sooner).
LOCK_DURATION = timedelta(minutes=15)
PASSWORD_MAX = 128
FULL_NAME_MAX = 200

# User columns whose change alters the PJSIP configuration Asterisk must be given.
TELEPHONY_COLUMNS = frozenset({"extension", "sip_id", "sip_md5_cred"})


@dataclass(frozen=True)
class UserSave:
    """The saved user and the names of the columns that changed ("created" on creation)."""

    user: User
    changed: frozenset[str]

    @property
    def telephony_changed(self) -> bool:
        if self.changed & TELEPHONY_COLUMNS:
            return True
        # A new or (de)activated user with telephony adds or removes a PJSIP endpoint.
        return bool(self.changed & {"created", "is_active"}) and self.user.has_telephony


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(func.lower(User.login))))


def find_by_login(session: Session, login: str) -> User | None:
    """Case-insensitive, as logins are compared everywhere."""
    return session.scalars(select(User).where(func.lower(User.login) == login.strip().lower())).first()


def is_locked(user: User, now: datetime | None = None) -> bool:
    """Locked after wrong passwords, until LOCK_DURATION has passed or an admin unlocks."""
    if user.locked_at is None:
        return False
    return (now or utcnow()) < as_aware(user.locked_at) + LOCK_DURATION


def lock_user(user: User, now: datetime) -> None:
    """Lock after wrong passwords; every open session of the user ends."""
    user.locked_at = now
    end_sessions(user)


def end_sessions(user: User) -> None:
    """Every session of the user, in any browser, ends at its next request (logout, lock)."""
    user.session_epoch = (user.session_epoch or 0) + 1


def unlock_user(session: Session, user: User) -> None:
    """What the admin's «Разблокировать» does: clears the lock, the failed-attempt counter
    and the login name's delay."""
    user.locked_at = None
    user.failed_logins = 0
    clear_throttle(session, login_key(user.login))
    session.flush()


def login_password_problem(password: str, *, login: str, strict: bool) -> str | None:
    """Why a login password is unacceptable (Russian), or None.

    `strict` is «Требовать строгий пароль»: then the full weak-password check applies.
    """
    if len(password) > PASSWORD_MAX:
        return f"Пароль: не длиннее {PASSWORD_MAX} символов"
    if strict:
        return weak_password_reason(password, login=login, strict=True)
    if len(password) < PASSWORD_MIN:
        return f"Пароль должен содержать не менее {PASSWORD_MIN} символов"
    if login and password.lower() == login.lower():
        return "Пароль не должен совпадать с логином"
    return None


def sip_password_problem(password: str, *, sip_id: str, extension: str) -> str | None:
    if len(password) > PASSWORD_MAX:
        return f"Пароль SIP: не длиннее {PASSWORD_MAX} символов"
    if any(ch.isspace() for ch in password):
        return "Пароль SIP не должен содержать пробелы"
    # Not strict: SIP phones are often provisioned with generated passwords of any shape,
    # but a trivially guessable one is an open door to toll fraud.
    return weak_password_reason(password, login=sip_id, extension=extension, strict=False)


def _taken(session: Session, column, value: str, user: User | None) -> User | None:  # type: ignore[no-untyped-def]
    query = select(User).where(column == value)
    if user is not None and user.id is not None:
        query = query.where(User.id != user.id)
    return session.scalars(query).first()


def _other_active_admins(session: Session, user: User) -> int:
    query = select(func.count(User.id)).where(User.role == ROLE_ADMIN, User.is_active.is_(True))
    if user.id is not None:
        query = query.where(User.id != user.id)
    return int(session.scalar(query) or 0)


def validate_user(
    session: Session, data: Mapping[str, object], user: User | None = None
) -> dict[str, object]:
    """Check `data` for a new user (`user` None) or changes to `user`.

    Returns the column values to assign (passwords already hashed/digested) or raises
    ValidationError. On edit, absent fields and empty passwords keep their stored values.
    """
    creating = user is None
    errors: dict[str, str] = {}
    clean: dict[str, object] = {}
    strict = get_settings(session).strong_passwords

    login = user.login if user else ""
    if creating or "login" in data:
        login = as_text(data.get("login"))
        if not login:
            errors["login"] = "Укажите логин"
        elif not _LOGIN.fullmatch(login):
            errors["login"] = "Логин: от 2 до 64 символов — латинские буквы, цифры и знаки . _ -"
        else:
            other = find_by_login(session, login)
            if other is not None and other is not user:
                errors["login"] = f"Логин «{login}» уже занят"
            else:
                clean["login"] = login

    if "full_name" in data:
        full_name = as_text(data["full_name"])
        if len(full_name) > FULL_NAME_MAX:
            errors["full_name"] = f"ФИО: не длиннее {FULL_NAME_MAX} символов"
        else:
            clean["full_name"] = full_name

    role = user.role if user else ROLE_REGISTRAR
    if "role" in data:
        role = as_text(data["role"])
        if role not in USER_ROLES:
            errors["role"] = "Выберите роль: администратор или регистратор"
        else:
            clean["role"] = role

    active = user.is_active if user else True
    if "is_active" in data:
        flag = parse_bool(data["is_active"])
        if flag is None:
            errors["is_active"] = "Активен: некорректное значение"
        else:
            active = flag
            clean["is_active"] = flag

    demoting = user is not None and user.role == ROLE_ADMIN and user.is_active
    demoting = demoting and (role != ROLE_ADMIN or not active)
    # Keep at least one way into «ЛПУ → Параметры» and «Пользователи системы».
    if demoting and user is not None and _other_active_admins(session, user) == 0:
        errors.setdefault("role", "Нельзя отключить или лишить прав последнего администратора")

    raw_password = data.get("password")
    password = raw_password if isinstance(raw_password, str) else as_text(raw_password)
    if password:
        problem = login_password_problem(password, login=login, strict=strict)
        if problem:
            errors["password"] = problem
        else:
            clean["password_hash"] = hash_password(password)
    elif creating:
        errors["password"] = "Укажите пароль"

    _validate_telephony(session, data, user, clean, errors)

    if errors:
        raise ValidationError(errors)
    return clean


def _validate_telephony(
    session: Session,
    data: Mapping[str, object],
    user: User | None,
    clean: dict[str, object],
    errors: dict[str, str],
) -> None:
    """«IP-телефония»: Доб. номер, ID SIP, Пароль SIP — all three, or none of them."""
    extension = user.extension if user else None
    if "extension" in data:
        extension = as_text(data["extension"]) or None
        if extension is not None and not _EXTENSION.fullmatch(extension):
            errors["extension"] = "Доб. номер: от 2 до 6 цифр"
        elif extension is not None and (other := _taken(session, User.extension, extension, user)):
            errors["extension"] = f"Доб. номер {extension} уже занят пользователем «{other.login}»"
        else:
            clean["extension"] = extension

    old_sip_id = user.sip_id if user else None
    sip_id = old_sip_id
    if "sip_id" in data:
        sip_id = as_text(data["sip_id"]) or None
        if sip_id is not None and not _SIP_ID.fullmatch(sip_id):
            errors["sip_id"] = "ID SIP: от 2 до 64 символов — латинские буквы, цифры и знаки . _ -"
        elif sip_id is not None and (other := _taken(session, User.sip_id, sip_id, user)):
            errors["sip_id"] = f"ID SIP «{sip_id}» уже используется пользователем «{other.login}»"
        else:
            clean["sip_id"] = sip_id

    raw = data.get("sip_password")
    sip_password = raw if isinstance(raw, str) else as_text(raw)
    if "extension" in errors or "sip_id" in errors:
        return
    if bool(extension) != bool(sip_id):
        missing = "sip_id" if extension else "extension"
        errors[missing] = "Для IP-телефонии укажите и доб. номер, и ID SIP"
        return
    if not extension or not sip_id:
        if sip_password:
            errors["sip_password"] = "Пароль SIP задаётся вместе с доб. номером и ID SIP"
        elif user is not None and user.sip_md5_cred:
            clean["sip_md5_cred"] = None  # telephony switched off: forget the digest
        return
    if sip_password:
        problem = sip_password_problem(sip_password, sip_id=sip_id, extension=extension)
        if problem:
            errors["sip_password"] = problem
        else:
            clean["sip_md5_cred"] = sip_md5_cred(sip_id, sip_password)
    elif sip_id != old_sip_id and user is not None and user.sip_md5_cred:
        # The stored digest covers the old ID SIP; it cannot be recomputed without the password.
        errors["sip_password"] = "ID SIP изменён: задайте пароль SIP заново"
    elif user is None or not user.sip_md5_cred:
        errors["sip_password"] = "Задайте пароль SIP"


def create_user(session: Session, data: Mapping[str, object]) -> UserSave:
    """Validate and add a user (flushed, not committed)."""
    clean = validate_user(session, data)
    user = User(role=ROLE_REGISTRAR, is_active=True, failed_logins=0, full_name="")
    for column, value in clean.items():
        setattr(user, column, value)
    session.add(user)
    session.flush()
    # Empty telephony fields on a new user are not a change the PBX has to hear about.
    filled = {column for column, value in clean.items() if value not in (None, "")}
    return UserSave(user=user, changed=frozenset(filled) | {"created"})


def update_user(session: Session, user: User, data: Mapping[str, object]) -> UserSave:
    """Validate and apply changes to `user` (flushed, not committed)."""
    clean = validate_user(session, data, user)
    changed = frozenset(column for column, value in clean.items() if getattr(user, column) != value)
    for column in changed:
        setattr(user, column, clean[column])
    session.flush()
    return UserSave(user=user, changed=changed)
