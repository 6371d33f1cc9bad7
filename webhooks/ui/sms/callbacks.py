"""«Отчёты о доставке» (admin): /sms/callbacks — the status-callback URLs registered at sms.ru
(callback/get, callback/add, callback/del)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import callback_urls as sms_callbacks
from clinic.sms import gateway
from clinic.smsru import SmsRuClient, SmsRuError, mask_text
from clinic.smsru.errors import SmsRuCallbackError, russian_reason
from webhooks.auth import require_admin
from webhooks.ui.db import db

callbacks_bp = Blueprint("sms_callbacks", __name__, url_prefix="/sms/callbacks")
callbacks_bp.before_request(require_admin)


def _suggested_callback_url() -> str:
    config = current_app.config["MIS"]
    return f"http://{config.hooks_host}:{config.hooks_port}/smsru/callback"


@callbacks_bp.route("", methods=["GET", "POST"])
def callbacks():  # type: ignore[no-untyped-def]
    """What sms.ru calls with delivery statuses (callback/get, callback/add, callback/del)."""
    settings = read_settings(db())
    errors: dict[str, str] = {}
    values = {"url": _suggested_callback_url()}
    status = 200
    try:
        client = gateway.make_client(current_app.config["MIS"], settings, read_timeout=10.0)
    except ValidationError as exc:
        no_key = next(iter(exc.errors.values()))
        return render_template(
            "sms/callbacks.html", registered=None, values=values, errors={}, problem=no_key
        )
    try:
        if request.method == "POST":
            values = {"url": request.form.get("url", "").strip()}
            try:
                done = _change_callback(client, request.form.get("action", "add"), values["url"])
            except ValidationError as exc:
                errors, status = exc.errors, 422
            except SmsRuCallbackError as exc:  # 901/902: sms.ru refused this address
                errors, status = {"url": russian_reason(exc)}, 422
            else:
                flash(done, "success")
                return redirect(url_for("sms_callbacks.callbacks"))
        registered, problem = client.callback_get(), ""
    except SmsRuError as exc:
        registered = None
        problem = mask_text(f"Запрос к sms.ru не выполнен: {russian_reason(exc)}", settings.sms_api_key)
        status = 502 if status == 200 and request.method == "POST" else status
    finally:
        client.close()
    page = render_template(
        "sms/callbacks.html", registered=registered, values=values, errors=errors, problem=problem
    )
    return page, status


def _change_callback(client: SmsRuClient, action: str, raw_url: str) -> str:
    """callback/add or callback/del for a checked address; returns the message for the admin."""
    url = sms_callbacks.clean_url(raw_url)
    if action == "delete":
        client.callback_del(url)
        return f"sms.ru больше не присылает отчёты на {url}"
    client.callback_add(url)
    return f"sms.ru будет присылать отчёты о доставке на {url}"
