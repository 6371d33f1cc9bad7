"""Public blueprint `hooks_mango` on the hooks listener (:55055):
POST /MangoOffice/UpdateStatus — the Mango robot's answer {"id": <Доп. информация>, "status": 1|2}.

Every request and our answer go to the exchange log (token masked). Errors are JSON with a
Russian reason: 400 bad body, 403 not allowed, 404 unknown id, 503 database trouble (so
the sender retries) — never a 500.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import writer_lock
from clinic.models import ExchangeLogEntry, utcnow
from clinic.robot.systems import write_exchange
from clinic.robot.webhook import Reply, handle

log = logging.getLogger(__name__)

bp = Blueprint("hooks_mango", __name__)

OWNER = "Mango Office UpdateStatus"
MAX_BODY = 64 * 1024


def _token() -> str:
    return request.headers.get("X-Webhook-Token") or request.args.get("token") or ""


def _masked_request(raw: bytes) -> str:
    args = {k: ("***" if k == "token" else v) for k, v in request.args.items()}
    head = f"{request.remote_addr} {request.content_type or ''}"
    if args:
        head += " " + json.dumps(args, ensure_ascii=False)
    return head + "\n" + raw.decode("utf-8", "replace")[:10000]


def _log_row(raw: bytes, reply: Reply, started: float) -> ExchangeLogEntry:
    return ExchangeLogEntry(
        at=utcnow(),
        direction="in",
        owner=OWNER,
        payload=_masked_request(raw),
        response=json.dumps(reply.body, ensure_ascii=False),
        elapsed_ms=int((time.monotonic() - started) * 1000),
        http_status=reply.http_status,
    )


@bp.post("/MangoOffice/UpdateStatus")
def update_status():  # type: ignore[no-untyped-def]
    started = time.monotonic()
    sessions: sessionmaker[Session] = current_app.extensions["mis_sessions"]
    raw = b"" if (request.content_length or 0) > MAX_BODY else request.stream.read(MAX_BODY + 1)
    if not raw and (request.content_length or 0) > MAX_BODY or len(raw) > MAX_BODY:
        return _refuse(sessions, 413, "тело запроса больше 64 КБ", started)
    try:
        with writer_lock(sessions), sessions() as session:
            reply = handle(
                session,
                content_type=request.content_type or "",
                raw=raw,
                remote_addr=request.remote_addr or "",
                token=_token(),
            )
            # the change and its log row commit together: one durable write per callback
            session.add(_log_row(raw, reply, started))
            session.commit()
    except SQLAlchemyError:
        log.exception("UpdateStatus: ошибка базы данных")
        reply = Reply(503, {"error": "база данных временно недоступна, повторите запрос"})
        row = _log_row(raw, reply, started)
        write_exchange(
            sessions,
            direction="in",
            owner=OWNER,
            payload=row.payload,
            response=row.response,
            elapsed_ms=row.elapsed_ms,
            http_status=reply.http_status,
        )
    body = json.dumps(reply.body, ensure_ascii=False)
    if reply.http_status >= 400:
        log.warning("UpdateStatus %s: %s", reply.http_status, reply.body.get("error"))
    return Response(body, status=reply.http_status, mimetype="application/json")


def _refuse(sessions: sessionmaker[Session], status: int, reason: str, started: float) -> Response:
    """An answer given without reading the body; logged all the same."""
    body = json.dumps({"error": reason}, ensure_ascii=False)
    write_exchange(
        sessions,
        direction="in",
        owner=OWNER,
        payload=_masked_request(
            f"({request.method}, тело {request.content_length or 0} байт не сохранено)".encode()
        ),
        response=body,
        elapsed_ms=int((time.monotonic() - started) * 1000),
        http_status=status,
    )
    return Response(
        body, status=status, mimetype="application/json", headers={"Allow": "POST"} if status == 405 else {}
    )


@bp.route("/MangoOffice/UpdateStatus", methods=["GET", "PUT", "PATCH", "DELETE"])
def wrong_method():  # type: ignore[no-untyped-def]
    return _refuse(current_app.extensions["mis_sessions"], 405, "используйте POST", time.monotonic())
