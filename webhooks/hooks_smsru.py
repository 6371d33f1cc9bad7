"""Public blueprint `hooks_smsru` on the hooks listener (:55055): POST /smsru/callback.

sms.ru POSTs `data[0]…data[N]` and `hash` (multipart or urlencoded). The hash is checked with
the clinic's api_id; delivery codes update the ledger (a final status is never undone, a
repeated event changes nothing). The answer is always the body `100`, even for a bad hash
or a database hiccup, otherwise sms.ru retries the same batch for days.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from clinic.db import writer_lock
from clinic.sms.delivery import handle_callback
from clinic.smsru.webhook import REPLY

log = logging.getLogger(__name__)

bp = Blueprint("hooks_smsru", __name__)

MAX_BODY = 1024 * 1024


@bp.post("/smsru/callback")
def smsru_callback():  # type: ignore[no-untyped-def]
    if request.content_length is not None and request.content_length > MAX_BODY:
        log.warning("sms.ru callback: тело больше %d байт, пропущено", MAX_BODY)
        return Response(REPLY, mimetype="text/plain")
    try:
        form = {key: request.form.get(key, "") for key in request.form}
        sessions = current_app.extensions["mis_sessions"]
        with writer_lock(sessions):  # sms.ru sends batches from several connections at once
            handle_callback(sessions, form)
    except SQLAlchemyError:
        # sms.ru polls are the fallback: the worker re-checks statuses with sms/status.
        log.exception("sms.ru callback: ошибка базы данных; статус будет получен опросом sms/status")
    except Exception:  # a malformed body must not turn into a 500 and endless retries
        log.exception("sms.ru callback: запрос не разобран")
    return Response(REPLY, mimetype="text/plain")
