"""Public blueprint served on the hooks listener (:55055). Gateways call it; no session."""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("public", __name__)

from webhooks.hooks_mango import bp as _hooks_mango  # noqa: E402  POST /MangoOffice/UpdateStatus

bp.register_blueprint(_hooks_mango)

from webhooks.hooks_smsru import bp as _hooks_smsru  # noqa: E402  POST /smsru/callback

bp.register_blueprint(_hooks_smsru)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")
