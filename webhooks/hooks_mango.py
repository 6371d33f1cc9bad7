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


@bp.post("/MangoOffice/UpdateStatus")
def update_status():  # type: ignore[no-untyped-def]
    started = time.monotonic()
    sessions: sessionmaker[Session] = current_app.extensions["mis_sessions"]
    if (request.content_length or 0) > MAX_BODY:
        body = json.dumps({"error": "тело запроса больше 64 КБ"}, ensure_ascii=False)
        return Response(body, status=413, mimetype="application/json")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        body = json.dumps({"error": "тело запроса больше 64 КБ"}, ensure_ascii=False)
        return Response(body, status=413, mimetype="application/json")
    try:
        with sessions() as session:
            reply = handle(
                session,
                content_type=request.content_type or "",
                raw=raw,
                remote_addr=request.remote_addr or "",
                token=_token(),
            )
    except SQLAlchemyError:
        log.exception("UpdateStatus: ошибка базы данных")
        reply = Reply(503, {"error": "база данных временно недоступна, повторите запрос"})
    body = json.dumps(reply.body, ensure_ascii=False)
    write_exchange(
        sessions,
        direction="in",
        owner=OWNER,
        payload=_masked_request(raw),
        response=body,
        elapsed_ms=int((time.monotonic() - started) * 1000),
        http_status=reply.http_status,
    )
    if reply.http_status >= 400:
        log.warning("UpdateStatus %s: %s", reply.http_status, reply.body.get("error"))
    return Response(body, status=reply.http_status, mimetype="application/json")


@bp.route("/MangoOffice/UpdateStatus", methods=["GET", "PUT", "PATCH", "DELETE"])
def wrong_method():  # type: ignore[no-untyped-def]
    body = json.dumps({"error": "используйте POST"}, ensure_ascii=False)
    return Response(body, status=405, mimetype="application/json", headers={"Allow": "POST"})
