"""The built-in softphone (WebRTC, JsSIP): its long-lived window and its JSON endpoints.

    GET  /phone/softphone                the softphone window (opened once, kept open: a call
                                         lives in it while the main window navigates)
    GET  /phone/api/softphone            the logged-in user's browser endpoint: websocket URL,
                                         SIP URI, password, devices, which phone rings
    POST /phone/api/softphone/devices    {"mic_device", "speaker_device"}: saved per user
    POST /phone/api/softphone/lease      {"instance"}: this window may register (200) or the
                                         user's softphone is open on another computer (409)
    POST /phone/api/softphone/release    {"instance"}: the window closes, the lease goes

The softphone registers as `<sip_id>-web` (clinic/softphone.py); Asterisk's websocket is the
one extra origin its page may connect to, so only this page's policy names it.
"""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, make_response, render_template

from clinic.config import Config
from clinic.softphone import (
    RING_BOTH,
    RING_MODES,
    RING_WEB,
    STANDBY_EXTEN,
    clean_device,
    stun_server,
    web_endpoint,
    web_password,
    ws_url,
)
from webhooks.auth import current_user
from webhooks.ui.db import db
from webhooks.ui.errors import json_object_body
from webhooks.ui.headers import content_security_policy

bp = Blueprint("softphone", __name__)

NO_PHONE = ("У вас не настроен добавочный номер SIP: софтфон недоступен. Попросите администратора "
            "заполнить вкладку «IP-телефония» в карточке пользователя.")


def _config() -> Config:
    return current_app.config["MIS"]  # type: ignore[no-any-return]


def _error(message: str, status: int, errors: dict[str, str] | None = None) -> Response:
    body = {"error": message, **({"errors": errors} if errors else {})}
    return Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.get("/phone/softphone")
def window():  # type: ignore[no-untyped-def]
    user = current_user()
    assert user is not None
    config = _config()
    page = render_template(
        "phone/softphone.html",
        has_phone=user.has_telephony,
        extension=user.extension or "",
        ring_title=RING_MODES.get(user.softphone_ring, ""),
        rings_here=user.softphone_ring in (RING_WEB, RING_BOTH),
    )
    response = make_response(page)
    # this page alone may open Asterisk's websocket
    response.headers["Content-Security-Policy"] = content_security_policy(
        config.events_url, extra_connect=(_origin(ws_url(config.pbx.http_port)),)
    )
    return response


@bp.get("/phone/api/softphone")
def account():  # type: ignore[no-untyped-def]
    user = current_user()
    assert user is not None
    if not user.has_telephony or not user.sip_id:
        return _error(NO_PHONE, 409)
    config = _config()
    endpoint = web_endpoint(user.sip_id)
    host = _sip_host()
    return jsonify({
        "ws_url": ws_url(config.pbx.http_port),
        "uri": f"sip:{endpoint}@{host}",
        # the idle window's standby line (ari_app/standby): «Звонок» finds his leg up already
        "standby_uri": f"sip:{STANDBY_EXTEN}@{host}",
        "user": endpoint,
        "password": web_password(config.secret_key, user.sip_id),
        "display_name": user.full_name or user.login,
        "extension": user.extension,
        "ring": user.softphone_ring,
        "ring_title": RING_MODES.get(user.softphone_ring, ""),
        "mic_device": user.mic_device or "",
        "speaker_device": user.speaker_device or "",
        "ice_servers": [{"urls": f"stun:{stun}"}] if (stun := stun_server()) else [],
    })


def _sip_host() -> str:
    from clinic.services.settings import read_settings

    return read_settings(db()).sip_domain or "127.0.0.1"


@bp.post("/phone/api/softphone/devices")
def devices():  # type: ignore[no-untyped-def]
    data = json_object_body()
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for field in ("mic_device", "speaker_device"):
        if field not in data:
            continue
        value, problem = clean_device(data[field]) if isinstance(data[field], str) else ("", "Нужна строка")
        if problem:
            errors[field] = problem
        values[field] = value
    if errors:
        return _error("Устройства не сохранены: " + "; ".join(errors.values()), 422, errors)
    if not values:
        return _error("Нет полей mic_device и speaker_device", 400)
    user = current_user()
    assert user is not None
    for field, value in values.items():
        setattr(user, field, value)
    db().commit()
    return jsonify({"ok": True, "mic_device": user.mic_device, "speaker_device": user.speaker_device})


# ------------------------------------------------------------------ one computer at a time
# A user's softphone endpoint keeps one registration (AOR max_contacts=1, remove_existing):
# two computers registering as the same user would take it from each other at every renewal
# (flapping, calls ringing on one computer or the other). So a window registers only while it
# holds the user's lease, renewed every LEASE_RENEW s; a second computer's window is refused
# with the reason and asks again until the first closes (release) or stops renewing (its
# lease lapses after LEASE_TTL s: a crashed or sleeping computer). The leases live in this
# web process (one waitress process); after its restart the first window to renew wins.
LEASE_TTL = 40.0
LEASE_RENEW = 15.0
ELSEWHERE = ("Софтфон уже подключён на другом компьютере (или в другом браузере) под вашим именем: "
             "разговаривайте там. Это окно подключится само, когда тот софтфон закроют.")
_leases: dict[int, tuple[str, float]] = {}  # user id -> (window instance, lapses at)
_leases_lock = threading.Lock()


def _instance() -> str | Response:
    data = json_object_body()
    instance = data.get("instance")
    if not isinstance(instance, str) or not 8 <= len(instance) <= 64 or not instance.isascii():
        return _error("Нет идентификатора окна софтфона (instance)", 400)
    return instance


@bp.post("/phone/api/softphone/lease")
def lease():  # type: ignore[no-untyped-def]
    instance = _instance()
    if isinstance(instance, Response):
        return instance
    user = current_user()
    assert user is not None
    if not user.has_telephony or not user.sip_id:
        return _error(NO_PHONE, 409)
    now = time.monotonic()
    with _leases_lock:
        holder = _leases.get(user.id)
        if holder is not None and holder[0] != instance and holder[1] > now:
            body = json.dumps({"error": ELSEWHERE, "elsewhere": True}, ensure_ascii=False)
            return Response(body, 409, mimetype="application/json")
        _leases[user.id] = (instance, now + LEASE_TTL)
    return jsonify({"ok": True, "renew_s": LEASE_RENEW})


@bp.post("/phone/api/softphone/release")
def release():  # type: ignore[no-untyped-def]
    instance = _instance()
    if isinstance(instance, Response):
        return instance
    user = current_user()
    assert user is not None
    with _leases_lock:
        holder = _leases.get(user.id)
        if holder is not None and holder[0] == instance:
            del _leases[user.id]
    return jsonify({"ok": True})


def register(app: object) -> None:
    app.register_blueprint(bp)  # type: ignore[attr-defined]
