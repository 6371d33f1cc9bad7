"""Passwords, SIP digests, API tokens and masking of secrets."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

# PJSIP auth realm; the SIP digest stored for each user is MD5(sip_id:REALM:password).
SIP_REALM = "mis-telephony"

_COMMON = {
    "password", "123456", "12345678", "qwerty", "111111", "123123", "admin", "secret",
    "1234567890", "qwerty123", "пароль", "000000", "654321", "abc123",
}


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    return check_password_hash(stored_hash, password)


def sip_md5_cred(sip_id: str, password: str, realm: str = SIP_REALM) -> str:
    return hashlib.md5(f"{sip_id}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 (SIP digest)


def weak_password_reason(
    password: str, *, login: str = "", extension: str = "", strict: bool = True
) -> str | None:
    """Why `password` is too weak (Russian), or None. Used for SIP and, when required, login passwords."""
    if len(password) < 8:
        return "Пароль должен содержать не менее 8 символов"
    lowered = password.lower()
    if lowered in _COMMON:
        return "Пароль слишком простой"
    if len(set(password)) < 4:
        return "Пароль слишком простой: мало разных символов"
    if password.isdigit() and (password in "01234567890123456789" or password in "98765432109876543210"):
        return "Пароль слишком простой: последовательность цифр"
    for word in (login, extension):
        if word and word.lower() in lowered:
            return "Пароль не должен содержать логин или номер"
    if strict and not (re.search(r"[A-Za-zА-Яа-я]", password) and re.search(r"\d", password)):
        return "Пароль должен содержать буквы и цифры"
    return None


def new_api_token() -> tuple[str, str]:
    """Return (token shown once, sha256 stored)."""
    token = "mis_" + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def mask(secret: str | None, keep: int = 4) -> str:
    """"64589EDB-8F29-C45C" -> "************C45C"; short secrets are hidden entirely."""
    if not secret:
        return ""
    if len(secret) <= keep * 2:
        return "*" * len(secret)
    return "*" * (len(secret) - keep) + secret[-keep:]
