"""POST /MangoOffice/UpdateStatus: parsing, protection and handling, free of Flask so the
benchmark and the tests can drive it directly.

Mango's robot does not sign this request (reference/mango.md §3a), so it is accepted only
with the shared secret (query `token=` or header `X-Webhook-Token`) and/or from an allowed
IP, as set on the Mango entry of «Внешние информационные системы». With neither set,
every request is refused: an open endpoint that edits appointments is not a default.

The work is split in two so that nothing slow runs under the database write lock:
:func:`check` (protection and parsing, reads only) and :func:`apply` (the short write).
Parsing is linear in the body's size (no backtracking regular expression, bounded depth)
and every malformed body ends in a :class:`BadRequest` with a Russian reason, never in an
exception the caller did not expect.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from clinic.models import ExternalSystem
from clinic.models.robot import SYSTEM_MANGO
from clinic.robot.status import NOT_FOUND, SOURCE_CALLBACK, apply_status_for_ref
from clinic.robot.systems import parse_networks

MAX_ID = 64  # RobotTask.ref is String(64)
STATUSES = (1, 2)


@dataclass(frozen=True)
class Reply:
    http_status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Accepted:
    """A protected, well-formed callback, ready to be applied."""

    ident: str
    status: int


class BadRequest(ValueError):
    pass


_BAD_STATUS = "status — 1 (подтверждена) или 2 (отменена)"


def parse_body(content_type: str, raw: bytes) -> tuple[str, int]:
    """(id, status) from a JSON or form-encoded body; BadRequest with a Russian reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("тело запроса не в UTF-8") from exc
    if not text.strip():
        raise BadRequest("пустое тело запроса")
    if "application/x-www-form-urlencoded" in content_type:
        form = parse_qs(text, keep_blank_values=True)
        data: Any = {k: v[-1] for k, v in form.items()}
    else:
        data = _json_or_loose(text)
    if not isinstance(data, dict):
        raise BadRequest('ожидается объект {"id": …, "status": 1|2}')
    if "id" not in data:
        raise BadRequest("нет поля id")
    if "status" not in data:
        raise BadRequest("нет поля status")
    return _ident(data["id"]), _status(data["status"])


def _json_or_loose(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:  # [[[[… thousands deep: the C decoder gives up cleanly
        raise BadRequest("тело запроса вложено слишком глубоко") from None
    except ValueError:
        return _loose(text)


def _loose(text: str) -> dict[str, str]:
    """The manual's template `{"id": {{Дополнительная информация}}, "status": 1}` pasted
    literally gives invalid JSON when the value is not a number; read that shape too.

    Plain string splitting, linear in the body: the regular expression this replaces
    backtracked for seconds on `{"id":` followed by a few thousand spaces. The status is
    after the last comma, the id is everything between `"id":` and that comma.
    """
    body = text.strip()
    refused = BadRequest("тело запроса — не JSON и не форма")
    if not (body.startswith("{") and body.endswith("}")):
        raise refused
    head, comma, tail = body[1:-1].rpartition(",")
    id_key, id_colon, ident = head.partition(":")
    status_key, status_colon, status = tail.partition(":")
    if not (comma and id_colon and status_colon):
        raise refused
    if id_key.strip() != '"id"' or status_key.strip() != '"status"':
        raise refused
    return {"id": ident.strip().strip('"'), "status": status.strip().strip('"')}


def _ident(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest("id — строка или число")
    ident = str(value).strip()
    if not ident or len(ident) > MAX_ID:
        raise BadRequest(f"id пустой или длиннее {MAX_ID} символов")
    # Lone surrogates ("\ud800" in JSON) cannot be encoded for the database, NUL is refused
    # by PostgreSQL, control characters are never part of «Доп. информация».
    if not ident.isprintable():
        raise BadRequest("id содержит недопустимые символы")
    return ident


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise BadRequest(_BAD_STATUS)
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: '²'.isdigit() is true, yet int('²') raises
        if not (text.isascii() and text.isdigit() and len(text) <= 3):
            raise BadRequest(_BAD_STATUS)
        value = int(text)
    if value not in STATUSES:  # also refuses floats other than 1.0/2.0, NaN and infinities
        raise BadRequest(_BAD_STATUS)
    return int(value)


@dataclass(frozen=True)
class Protection:
    """The active Mango entry's webhook protection: its secret and allowed networks."""

    secret: str
    ips: str


# Built once; read on every callback, so a changed secret holds at once. Two columns, not
# the whole ExternalSystem through the ORM: that cost more than the rest of the check.
_SYSTEMS = ExternalSystem.__table__
_PROTECTION = (
    select(_SYSTEMS.c.webhook_secret, _SYSTEMS.c.webhook_ips)
    .where(_SYSTEMS.c.kind == SYSTEM_MANGO, _SYSTEMS.c.is_active.is_(True))
    .order_by(_SYSTEMS.c.id)
    .limit(1)
)


def protection(db: Session | Connection) -> Protection | None:
    """`db` may be a plain Connection: the check needs no ORM session."""
    row = db.execute(_PROTECTION).first()
    return None if row is None else Protection(row.webhook_secret or "", row.webhook_ips or "")


@lru_cache(maxsize=32)
def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(parse_networks(raw))


def authorize(system: ExternalSystem | Protection | None, remote_addr: str, token: str) -> str | None:
    """None if allowed, else the Russian reason for a 403."""
    if system is None:
        return "Mango Office не настроен"
    secret = system.webhook_secret if isinstance(system, ExternalSystem) else system.secret
    ips = system.webhook_ips if isinstance(system, ExternalSystem) else system.ips
    networks = _networks(ips) if ips else ()
    if not secret and not networks:
        return "приём статусов не защищён: задайте секрет вебхука или разрешённые IP-адреса"
    if networks:
        try:
            addr = ipaddress.ip_address(remote_addr)
        except ValueError:
            return "адрес отправителя не распознан"
        if not any(addr in net for net in networks):
            return "адрес отправителя не в списке разрешённых"
    if secret and not hmac.compare_digest(token.encode(), secret.encode()):
        return "неверный или отсутствующий токен"
    return None


def check(
    db: Session | Connection, *, content_type: str, raw: bytes, remote_addr: str, token: str
) -> Reply | Accepted:
    """Protection first, then the body; reads only, so it runs outside the write lock.
    A Reply is a refusal to send back as is."""
    refused = authorize(protection(db), remote_addr, token)
    if refused:
        return Reply(403, {"error": refused})
    try:
        ident, status = parse_body(content_type, raw)
    except BadRequest as exc:
        return Reply(400, {"error": str(exc)})
    return Accepted(ident, status)


def apply(session: Session, accepted: Accepted) -> Reply:
    """The write; the caller commits (the change and its log row in one transaction)."""
    ident, status = accepted.ident, accepted.status
    outcome = apply_status_for_ref(session, ident, status, SOURCE_CALLBACK)
    if outcome is None:
        return Reply(404, {"error": f"задача с id {ident!r} не найдена", "id": ident})
    if outcome.result == NOT_FOUND:
        return Reply(404, {"error": "записи задачи не найдены", "id": ident})
    return Reply(
        200,
        {
            "result": outcome.result,
            "id": ident,
            "status": status,
            "changed": outcome.changed,
            "unchanged": outcome.unchanged,
            "stale": outcome.stale,
        },
    )


def handle(session: Session, *, content_type: str, raw: bytes, remote_addr: str, token: str) -> Reply:
    """:func:`check` then :func:`apply` in one session (benchmarks, tests); the caller commits."""
    checked = check(session, content_type=content_type, raw=raw, remote_addr=remote_addr, token=token)
    return checked if isinstance(checked, Reply) else apply(session, checked)
