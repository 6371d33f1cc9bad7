"""POST /MangoOffice/UpdateStatus: parsing, protection and handling, free of Flask so the
benchmark and the tests can drive it directly.

Mango's robot does not sign this request (reference/mango.md §3a), so it is accepted only
with the shared secret (query `token=` or header `X-Webhook-Token`) and/or from an allowed
IP, as set on the Mango entry of «Внешние информационные системы». With neither set,
every request is refused: an open endpoint that edits appointments is not a default.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.orm import Session

from clinic.models import ExternalSystem
from clinic.robot.status import NOT_FOUND, SOURCE_CALLBACK, apply_status, find_task
from clinic.robot.systems import active_mango, parse_networks


@dataclass(frozen=True)
class Reply:
    http_status: int
    body: dict[str, Any]


class BadRequest(ValueError):
    pass


# The manual's template `{"id": {{Дополнительная информация}}, "status": 1}` pasted
# literally gives invalid JSON when the value is not a number; read that shape too.
_LOOSE = re.compile(
    r'^\s*\{\s*"id"\s*:\s*(?P<id>.*?)\s*,\s*"status"\s*:\s*(?P<status>[^,}\s]+)\s*\}\s*$', re.S
)


def parse_body(content_type: str, raw: bytes) -> tuple[str, int]:
    """(id, status) from a JSON or form-encoded body; BadRequest with a Russian reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("тело запроса не в UTF-8") from exc
    if not text.strip():
        raise BadRequest("пустое тело запроса")
    data: Any
    if "application/x-www-form-urlencoded" in content_type:
        form = parse_qs(text, keep_blank_values=True)
        data = {k: v[-1] for k, v in form.items()}
    else:
        try:
            data = json.loads(text)
        except ValueError:
            loose = _LOOSE.match(text)
            if loose is None:
                raise BadRequest("тело запроса — не JSON и не форма") from None
            data = {"id": loose["id"].strip().strip('"'), "status": loose["status"].strip('"')}
    if not isinstance(data, dict):
        raise BadRequest('ожидается объект {"id": …, "status": 1|2}')
    if "id" not in data:
        raise BadRequest("нет поля id")
    if "status" not in data:
        raise BadRequest("нет поля status")
    ident = data["id"]
    if isinstance(ident, bool) or not isinstance(ident, (str, int)):
        raise BadRequest("id — строка или число")
    ident = str(ident).strip()
    if not ident or len(ident) > 64:
        raise BadRequest("id пустой или длиннее 64 символов")
    status = data["status"]
    if isinstance(status, bool):
        raise BadRequest("status — 1 (подтверждена) или 2 (отменена)")
    if isinstance(status, str) and status.strip().isdigit():
        status = int(status.strip())
    if status not in (1, 2):
        raise BadRequest("status — 1 (подтверждена) или 2 (отменена)")
    return ident, int(status)


def authorize(system: ExternalSystem | None, remote_addr: str, token: str) -> str | None:
    """None if allowed, else the Russian reason for a 403."""
    if system is None:
        return "Mango Office не настроен"
    secret = system.webhook_secret
    networks = parse_networks(system.webhook_ips) if system.webhook_ips else []
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


def handle(session: Session, *, content_type: str, raw: bytes, remote_addr: str, token: str) -> Reply:
    """Everything but the exchange log; the caller commits (the change and its log row
    in one transaction)."""
    system = active_mango(session)
    refused = authorize(system, remote_addr, token)
    if refused:
        return Reply(403, {"error": refused})
    try:
        ident, status = parse_body(content_type, raw)
    except BadRequest as exc:
        return Reply(400, {"error": str(exc)})
    robot_task = find_task(session, ident)
    if robot_task is None:
        return Reply(404, {"error": f"задача с id {ident!r} не найдена", "id": ident})
    outcome = apply_status(session, robot_task, status, SOURCE_CALLBACK)
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
