"""The Mango-facing routes: `/vpbx/<method>`, form-encoded POSTs answered with JSON."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

bp = Blueprint("mango_vpbx", __name__)


@bp.route("/vpbx/<path:method>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def vpbx(method: str) -> tuple[Response, int]:
    emu = current_app.extensions["mango_emulator"]
    # request.form is empty for non-form bodies; the three-field check then answers 3103.
    status, body = emu.handle(method, request.method, request.form)
    return jsonify(body), status
