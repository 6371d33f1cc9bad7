"""Public blueprint `hooks_smsru` on the hooks listener (:55055): POST /smsru/callback.

sms.ru POSTs `data[0]…data[N]` and `hash` (multipart or urlencoded) and resends the same
batch every minute, for days, until the answer is exactly `100` (smsru.md §10). So `100`
means "everything good in this batch is stored", and anything else asks for the batch again:

- 200 `100`: the signature matched; every record was applied, found behind what is
  stored, or refused on its own (a malformed record — a time in milliseconds, an odd id —
  would be just as malformed when resent; the worker's sms/status poll fetches the truth).
- 400 JSON: not a callback at all (no `data[N]`, no or malformed `hash`, unreadable form);
  413 JSON: a body over the listener's bound (256 KB) or with over 1000 form parts.
- 403 JSON: the signature does not match the clinic's key, or no key is set: sms.ru keeps
  the batch and it is taken once «Ключ API» in the settings is right.
- 503 JSON: database trouble; the resent batch is applied then (records are idempotent).

Every request and the fate of each record go to «Журнал обмена» (the hash masked). The
form is parsed and the signature checked in the request's thread; the records and their
log row are written in the group commit (clinic/group_commit.py), answered once durable.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from clinic.models import ExchangeLogEntry, utcnow
from clinic.services.settings import read_settings
from clinic.sms.delivery import RecordOutcome, apply_callback, read_callback
from clinic.smsru.webhook import REPLY, Refusal
from webhooks.app import HOOKS_MAX_BODY
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

bp = Blueprint("hooks_smsru", __name__)

OWNER = "sms.ru Отчёты о доставке"
# refused before the signature proved the sender: sampled, not stored one by one
UNAUTHENTICATED = frozenset({400, 403, 405, 413})
MAX_BODY = HOOKS_MAX_BODY  # 100 records are a few KB
MAX_FIELDS = 1000  # sms.ru sends up to 100 records and a hash
_TOO_LARGE = f"тело запроса больше {MAX_BODY // 1024} КБ"


@bp.post("/smsru/callback")
def smsru_callback():  # type: ignore[no-untyped-def]
    started = time.monotonic()
    sessions: sessionmaker[Session] = current_app.extensions["mis_sessions"]
    if (request.content_length or 0) > MAX_BODY:
        return _refuse(sessions, Refusal(413, _TOO_LARGE), {}, started)
    form = _form()
    if form is None:
        too_many = Refusal(413, f"{_TOO_LARGE}, или в нём больше {MAX_FIELDS} полей")
        return _refuse(sessions, too_many, {}, started)
    try:
        with expecting_write(sessions):  # the group committer holds its group for this one
            return _process(sessions, form, started)
    except SQLAlchemyError as exc:
        log.warning("sms.ru callback: ошибка базы данных (%s), ответ 503", exc.__class__.__name__)
        return _refuse(
            sessions, Refusal(503, "база данных временно недоступна, повторите запрос"), form, started
        )


def _form() -> dict[str, str] | None:
    """The form fields (multipart or urlencoded, undecodable bytes replaced), or None when
    the body breaks the size limits. Any other body gives an empty form."""
    request.max_form_parts = MAX_FIELDS
    try:
        return {key: request.form.get(key, "") for key in request.form}
    except HTTPException:  # RequestEntityTooLarge: over the length or the parts limit
        return None


def _process(sessions: sessionmaker[Session], form: dict[str, str], started: float) -> Response:
    with sessions() as session:  # reads only: no lock while the form is checked
        api_id = read_settings(session).sms_api_key or ""
    records = read_callback(api_id, form)
    if isinstance(records, Refusal):
        return _refuse(sessions, records, form, started)
    head = _head()  # read from the request here: the write runs on the committer thread

    def write(session: Session) -> list[RecordOutcome]:
        outcomes = apply_callback(session, records, now=utcnow())
        add_row(session, _log_row(form, 200, _summary(outcomes), started, head))
        return outcomes

    outcomes = commit_in_group(sessions, write)  # returns once the batch is durable
    refused = [o for o in outcomes if o.result == "refused"]
    if refused:  # one line, no traceback: the exchange log has each record's reason
        log.warning("sms.ru callback: отклонено записей %d из %d", len(refused), len(outcomes))
    return Response(REPLY, mimetype="text/plain")


def _summary(outcomes: list[RecordOutcome]) -> str:
    lines = {f"data[{o.number}]": o.line() for o in outcomes}
    return json.dumps({"ответ": REPLY, "записи": lines}, ensure_ascii=False, indent=1)


def _refuse(
    sessions: sessionmaker[Session], refusal: Refusal, form: Mapping[str, str], started: float
) -> Response:
    body = {"error": refusal.reason}
    row = _log_row(form, refusal.http_status, json.dumps(body, ensure_ascii=False), started)
    if refusal.http_status in UNAUTHENTICATED:
        stored = store_refusal(sessions, row, request.remote_addr or "")
    else:
        store_row(sessions, row)
        stored = True
    if stored:  # a flood of forged callbacks is sampled in the text log too
        log.warning("sms.ru callback %s: %s", refusal.http_status, storable(refusal.reason))
    return json_response(refusal.http_status, body)


def _head() -> str:
    return f"{request.remote_addr} {request.content_type or ''} {request.content_length or 0} байт"


def _log_row(
    form: Mapping[str, str], status: int, response: str, started: float, head: str | None = None
) -> ExchangeLogEntry:
    shown = {key: ("***" if key == "hash" else value) for key, value in form.items()}
    head = _head() if head is None else head
    return exchange_row(
        owner=OWNER,
        payload=head + "\n" + json.dumps(shown, ensure_ascii=False, indent=1),
        response=response,
        elapsed_ms=int((time.monotonic() - started) * 1000),
        http_status=status,
    )


@bp.route("/smsru/callback", methods=["GET", "PUT", "PATCH", "DELETE"])
def smsru_wrong_method():  # type: ignore[no-untyped-def]
    """sms.ru only POSTs; a GET here is a person or a scanner. JSON and logged, like the rest."""
    response = _refuse(
        current_app.extensions["mis_sessions"], Refusal(405, "используйте POST"), {}, time.monotonic()
    )
    response.headers["Allow"] = "POST"
    return response
