"""«ЛПУ → IP-телефония → Транк»: the optional outbound trunk to the telephone network.

A static contact (host and port of the provider's SIP server), optional digest credentials
and the clinic's number shown to patients (Caller ID). An empty host means no trunk: calls
to outside numbers are refused with an explanation before anything is dialled. The password
is never shown back; an empty password field keeps the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from clinic.phones import PhoneError, normalize
from clinic.services import ValidationError, as_text, parse_bool, parse_int
from clinic.services.settings import get_settings

FIELDS = ("trunk_host", "trunk_port", "trunk_user", "trunk_password", "trunk_callerid")
CLEAR_PASSWORD = "trunk_password_clear"
LABELS = {
    "trunk_host": "Адрес SIP-сервера оператора",
    "trunk_port": "Порт",
    "trunk_user": "Пользователь",
    "trunk_password": "Пароль",
    "trunk_callerid": "Номер клиники (Caller ID)",
}
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$"
)
_USER = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


def current(session: Session) -> dict[str, Any]:
    row = get_settings(session)
    return {
        "trunk_host": row.trunk_host,
        "trunk_port": row.trunk_port,
        "trunk_user": row.trunk_user,
        "trunk_callerid": row.trunk_callerid,
        "has_password": bool(row.trunk_password),
    }


def update_trunk(session: Session, data: Mapping[str, object]) -> bool:
    """Validate and store; returns True when something Asterisk needs changed. Raises
    ValidationError (Russian messages per field) and changes nothing then."""
    row = get_settings(session)
    errors: dict[str, str] = {}
    host = as_text(data.get("trunk_host"))
    if host and not _HOST.match(host):
        errors["trunk_host"] = "Адрес SIP-сервера: имя хоста или IP-адрес, без порта и пробелов"
    port = parse_int(data.get("trunk_port")) if as_text(data.get("trunk_port")) else 5060
    if port is None or not 1 <= port <= 65535:
        errors["trunk_port"] = "Порт должен быть числом от 1 до 65535"
    user = as_text(data.get("trunk_user"))
    if user and not _USER.match(user):
        errors["trunk_user"] = "Пользователь: латинские буквы, цифры и . _ + - (до 64 знаков)"
    password = str(data.get("trunk_password") or "")
    if password and (len(password) > 128 or any(ch in password for ch in ';\r\n"')):
        errors["trunk_password"] = 'Пароль не должен содержать ; " и переводы строк (до 128 знаков)'
    clear = bool(parse_bool(data.get(CLEAR_PASSWORD)))
    new_password = "" if clear else (password or row.trunk_password)
    if user and not new_password and "trunk_password" not in errors:
        errors["trunk_password"] = "Для пользователя нужен пароль"
    callerid_raw = as_text(data.get("trunk_callerid"))
    callerid = ""
    if callerid_raw:
        try:
            callerid = normalize(callerid_raw)
        except PhoneError as exc:
            errors["trunk_callerid"] = str(exc)
    if errors:
        raise ValidationError(errors)
    new = {
        "trunk_host": host,
        "trunk_port": port,
        "trunk_user": user,
        "trunk_password": new_password,
        "trunk_callerid": callerid,
    }
    changed = any(getattr(row, k) != v for k, v in new.items())
    for key, value in new.items():
        setattr(row, key, value)
    return changed
