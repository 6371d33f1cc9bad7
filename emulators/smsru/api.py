"""The sms.ru API paths (``/sms/send``, ``/my/balance`` …): GET or POST, parameters from
the query and/or the body, JSON with ``json=1`` and legacy plain text without it, HTTP 200
for every API outcome (§1, §12). Injected faults are applied here."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, request

from emulators.smsru import render
from emulators.smsru.emulator import Emulator
from emulators.smsru.form import parse_urlencoded
from emulators.smsru.options import FaultRule
from emulators.smsru.state import Params

bp = Blueprint("smsru_api", __name__)

_HTML_ERROR = "<html><head><title>{status}</title></head><body><h1>{status}</h1><hr>nginx</body></html>"


def emulator() -> Emulator:
    return current_app.extensions["smsru_emulator"]


def _fault_response(rule: FaultRule) -> Response | None:
    if rule.kind == "http_status":
        status = rule.status or 500
        return Response(_HTML_ERROR.format(status=status), status=status, content_type="text/html")
    if rule.kind == "api_error":
        return render.json_response(render.error(rule.code, rule.text))
    if rule.kind == "raw":
        status = rule.status or 200
        return Response(rule.body, status=status, content_type=rule.content_type, headers=render.HEADERS)
    return None


def _params() -> tuple[Params, bool]:
    """The query and body parameters, and whether any of them is not UTF-8 (212)."""
    query, query_ok = parse_urlencoded(request.query_string)
    if request.mimetype == "application/x-www-form-urlencoded":
        body, body_ok = parse_urlencoded(request.get_data())
        return Params([*query, *body]), not (query_ok and body_ok)
    form = list(request.form.items(multi=True))  # multipart: bad bytes come as U+FFFD
    return Params([*query, *form]), not query_ok or any("\ufffd" in value for _, value in form)


@bp.route("/", defaults={"method": ""}, methods=["GET", "POST"])
@bp.route("/<path:method>", methods=["GET", "POST"])
def call(method: str) -> Response:
    emu = emulator()
    method = method.strip("/")
    params, not_utf8 = _params()
    rule = emu.pick_fault(method)
    if emu.options.latency > 0:
        time.sleep(emu.options.latency)  # simulated network latency, for the demo
    hold = rule.hold if rule is not None and rule.hold is not None else emu.options.timeout_hold
    if rule is not None and rule.kind == "timeout" and not rule.process:
        emu.hold(hold)  # lost before sms.ru acted: nothing happens, the client times out
        return render.json_response(render.error(220))
    if rule is not None and (response := _fault_response(rule)) is not None:
        return response
    payload, order = emu.api(method, params, not_utf8=not_utf8)
    if rule is not None and rule.kind == "timeout":
        emu.hold(hold)  # acted on, then the reply is lost: the ambiguous case for a client
    if params.flag("json"):
        return render.json_response(payload)
    body = render.plain_text(method, payload, order)
    return Response(body, content_type="text/plain; charset=utf-8", headers=render.HEADERS)
