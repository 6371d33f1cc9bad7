"""Public blueprint `hooks_mango` on the hooks listener (:55055):
POST /MangoOffice/UpdateStatus — the Mango robot's answer {"id": <Доп. информация>, "status": 1|2}.

Every request and our answer go to the exchange log (token masked), malformed or not.
Errors are JSON with a Russian reason: 400 bad body, 403 not allowed, 404 unknown id,
405 wrong method, 413 body over 64 KB, 503 database trouble (so the sender retries) —
never a 500.

The body is read (at most 64 KB), checked and parsed in the request's thread; only the
short write of the change and its log row goes to the group commit (clinic/group_commit.py),
which answers once that write is durable.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, current_app, request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import ExchangeLogEntry
from clinic.robot.webhook import Reply, apply, check
from webhooks.hook_log import (
    add_row,
    commit_in_group,
    exchange_row,
    expecting_write,
    json_response,
    storable,
    store_refusal,
    store_row,
)

log = logging.getLogger(__name__)

bp = Blueprint("hooks_mango", __name__)

OWNER = "Mango Office UpdateStatus"
MAX_BODY = 64 * 1024
_DB_TROUBLE = Reply(503, {"error": "база данных временно недоступна, повторите запрос"})


def _token() -> str:
    return request.headers.get("X-Webhook-Token") or request.args.get("token") or ""


def _masked_request(raw: bytes) -> str:
    args = {k: ("***" if k == "token" else v) for k, v in request.args.items()}
    head = f"{request.remote_addr} {request.content_type or ''}"
    if args:
        head += " " + json.dumps(args, ensure_ascii=False)
    return head + "\n" + raw.decode("utf-8", "replace")[:10000]


def _log_row(raw: bytes, reply: Reply, started: float, payload: str | None = None) -> ExchangeLogEntry:
    return exchange_row(
        owner=OWNER,
        payload=_masked_request(raw) if payload is None else payload,
        response=json.dumps(reply.body, ensure_ascii=False),
        elapsed_ms=int((time.monotonic() - started) * 1000),
        http_status=reply.http_status,
    )


def _read_body() -> bytes | None:
    """The body, or None when it is over MAX_BODY (declared or actually sent)."""
    if (request.content_length or 0) > MAX_BODY:
        return None
    raw = request.stream.read(MAX_BODY + 1)
    return None if len(raw) > MAX_BODY else raw


@bp.post("/MangoOffice/UpdateStatus")
def update_status():  # type: ignore[no-untyped-def]
    started = time.monotonic()
    sessions: sessionmaker[Session] = current_app.extensions["mis_sessions"]
    raw = _read_body()
    if raw is None:
        return _refuse(sessions, 413, "тело запроса больше 64 КБ", started)
    try:
        with expecting_write(sessions):  # the group committer holds its group for this one
            reply = _process(sessions, raw, started)
    except SQLAlchemyError as exc:
        log.warning("UpdateStatus: ошибка базы данных (%s), ответ 503", exc.__class__.__name__)
        reply = _DB_TROUBLE
        store_row(sessions, _log_row(raw, reply, started))
    if reply.http_status >= 400 and reply.http_status != 403:  # 403s: sampled in «Журнал обмена»
        log.warning("UpdateStatus %s: %s", reply.http_status, storable(str(reply.body.get("error"))))
    return json_response(reply.http_status, reply.body)


def _process(sessions: sessionmaker[Session], raw: bytes, started: float) -> Reply:
    with _engine(sessions).connect() as connection:  # reads only, no lock held, no ORM session
        checked = check(
            connection,
            content_type=request.content_type or "",
            raw=raw,
            remote_addr=request.remote_addr or "",
            token=_token(),
        )
    if isinstance(checked, Reply):
        if checked.http_status == 403:  # no valid token: sampled, not stored one by one
            store_refusal(sessions, _log_row(raw, checked, started), request.remote_addr or "")
        else:
            store_row(sessions, _log_row(raw, checked, started))
        return checked
    payload = _masked_request(raw)  # read from the request here: the write runs on another thread

    def write(session: Session) -> Reply:
        reply = apply(session, checked)
        # the change and its log row commit together, in the group's durable commit
        add_row(session, _log_row(raw, reply, started, payload))
        return reply

    return commit_in_group(sessions, write)


def _engine(sessions: sessionmaker[Session]) -> Engine:
    return sessions.kw["bind"]


def _refuse(sessions: sessionmaker[Session], status: int, reason: str, started: float) -> Response:
    """An answer given without reading the body; logged all the same."""
    body = {"error": reason}
    store_refusal(  # 405 / 413: nobody has proved who sent it
        sessions,
        exchange_row(
            owner=OWNER,
            payload=_masked_request(
                f"({request.method}, тело {request.content_length or 0} байт не сохранено)".encode()
            ),
            response=json.dumps(body, ensure_ascii=False),
            elapsed_ms=int((time.monotonic() - started) * 1000),
            http_status=status,
        ),
        request.remote_addr or "",
    )
    return json_response(status, body, {"Allow": "POST"} if status == 405 else None)


@bp.route("/MangoOffice/UpdateStatus", methods=["GET", "PUT", "PATCH", "DELETE"])
def wrong_method():  # type: ignore[no-untyped-def]
    return _refuse(current_app.extensions["mis_sessions"], 405, "используйте POST", time.monotonic())
