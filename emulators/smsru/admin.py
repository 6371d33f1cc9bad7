"""Admin endpoints under ``/_emulator`` for tests and the demo (not part of sms.ru).

- ``GET  /_emulator/messages``  what was sent (filters: ``phone``, ``sms_id``, ``test``)
- ``GET  /_emulator/config``    current options and balance; ``POST`` a JSON object to change them
- ``POST /_emulator/advance``   ``{"seconds": N}``: move the clock, deliver, push callbacks now
- ``GET  /_emulator/callbacks`` registered URLs, queued batches, every delivery attempt
- ``POST /_emulator/release``   let requests held by a ``timeout`` fault finish
- ``POST /_emulator/reset``     back to the start-up options and an empty account
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from emulators.smsru.api import emulator

bp = Blueprint("smsru_admin", __name__, url_prefix="/_emulator")


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.get("/messages")
def messages() -> ResponseReturnValue:
    found = emulator().messages()
    if phone := request.args.get("phone"):
        digits = "".join(ch for ch in phone if ch.isdigit())
        found = [m for m in found if m["phone"] == digits]
    if sms_id := request.args.get("sms_id"):
        found = [m for m in found if m["sms_id"] == sms_id]
    if (test := request.args.get("test")) is not None:
        found = [m for m in found if m["test"] == (test == "1")]
    return jsonify(messages=found)


@bp.get("/config")
def get_config() -> ResponseReturnValue:
    return jsonify(emulator().config())


@bp.post("/config")
def set_config() -> ResponseReturnValue:
    try:
        emulator().configure(_json_body())
    except (TypeError, ValueError) as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(emulator().config())


@bp.post("/advance")
def advance() -> ResponseReturnValue:
    try:
        seconds = float(_json_body().get("seconds", 0))
        return jsonify(emulator().advance(seconds))
    except (TypeError, ValueError) as exc:
        return jsonify(error=str(exc)), 400


@bp.get("/callbacks")
def callbacks() -> ResponseReturnValue:
    emu = emulator()
    with emu.lock:
        registered = list(emu.state.callbacks)
    return jsonify(registered=registered, queued=emu.dispatcher.queued(), attempts=emu.dispatcher.history())


@bp.post("/release")
def release() -> ResponseReturnValue:
    return jsonify(released=emulator().release_holds())


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    emulator().reset()
    return jsonify(ok=True)
