"""Registrar telephony in the browser: the «Прием по телефону» window, the live call events
(server-sent events, served by ari_app's events listener: here only their token) with the
incoming-call screen pop, the call log, missed calls and recordings.

The web side never drives Asterisk itself: every command goes to ari_app's loopback control
API (`config.pbx.control_url`) with the shared token and the logged-in user's id, and its
JSON answer (or its Russian error with the 4xx status) is passed back to the page.

    GET  /phone                         «Прием по телефону» (?number=&patient_id=&appointment_id=&dial=1)
    GET  /phone/appointment/<id>        click-to-call from the scheduler's appointment menu
    GET  /phone/patient/<id>            click-to-call from the patient card
    GET  /phone/find?q=                 «Найти пациента»: by number (last 10 digits) or by name
    GET  /phone/api/calls               the user's active calls
    POST /phone/api/calls               {"target", "patient_id"?, "appointment_id"?, "callback_of"?}
    POST /phone/api/calls/<uid>/<command>   hold, unhold, record/start, record/stop, hangup,
                                        conference, transfer, transfer/complete, transfer/cancel, dtmf
    GET  /phone/events-token            {"url", "token"}: the live events' stream on ari_app's
                                        events listener and a token good for a minute to open it
    GET  /phone/api/presence            every colleague's phone state for a page's first paint
                                        (then the stream's `presence` events keep it current)
    GET  /calls                         «Журнал звонков» (registrars: their own; admins: all)
    GET  /calls/missed                  missed calls with «Перезвонить»
    GET  /calls/recordings/<id>         a recording, playable in the browser
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from clinic.call_control import (
    CALLS_PATH,
    DIAL_FIELDS,
    PHONE_CALLS_PATH,
    PRESENCE_PATH,
    PRESENCE_TITLES,
    RECORDINGS_PATH,
    ControlError,
    ErrorId,
    PresenceState,
    body_fields,
    command_path,
    parse_command,
)
from clinic.clock import to_clinic
from clinic.config import Config
from clinic.events_token import make_token
from clinic.models import CALL_RESULTS, DIRECTIONS, Appointment, Call, CallRecording, Patient, User
from clinic.phones import display, match_key
from clinic.services import calls as calls_svc
from webhooks.auth import current_user
from webhooks.ui.clinic_time import clinic_now, request_zone
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.errors import json_object_body
from webhooks.ui.patient_search import search_patients

bp = Blueprint("phone", __name__)

UNAVAILABLE = "Сервис телефонии недоступен: попробуйте позже или обратитесь к администратору"


def _config() -> Config:
    return current_app.config["MIS"]  # type: ignore[no-any-return]


def _control(timeout: float = 15.0) -> httpx.Client:
    pbx = _config().pbx
    return httpx.Client(
        base_url=pbx.control_url,
        timeout=timeout,
        trust_env=False,
        headers={"X-Control-Token": pbx.control_token},
    )


def _user_id() -> int:
    user = current_user()
    if user is None:
        abort(401)
    return user.id


def _proxy(method: str, path: str, body: dict[str, Any] | None = None) -> Response:
    """Forward to the control API as the logged-in user; its status and JSON come back as is."""
    try:
        with _control() as client:
            resp = client.request(method, path, json=body, headers={"X-Actor-Id": str(_user_id())})
    except httpx.HTTPError:
        err = ControlError(ErrorId.PBX_UNAVAILABLE, UNAVAILABLE)
        return Response(
            json.dumps(err.body(), ensure_ascii=False), err.status, content_type="application/json"
        )
    return Response(resp.content, resp.status_code, content_type="application/json")


# ----------------------------------------------------------------------------- window


@bp.get("/phone")
def window():  # type: ignore[no-untyped-def]
    user = current_user()
    assert user is not None
    patient = None
    pid = request.args.get("patient_id", type=int)
    if pid:
        patient = db().get(Patient, pid)
    return render_template(
        "phone/window.html",
        number=request.args.get("number", ""),
        patient=patient,
        appointment_id=request.args.get("appointment_id", type=int) or "",
        callback_of=request.args.get("callback_of", ""),
        autodial=request.args.get("dial") == "1",
        has_phone=user.has_telephony,
        extension=user.extension or "",
    )


@bp.get(f"/phone/appointment/<{ROW_ID}:appointment_id>")
def appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    appt = db().get(Appointment, appointment_id)
    if appt is None:
        abort(404)
    return redirect(
        url_for(
            "phone.window",
            number=appt.patient.phone or "",
            patient_id=appt.patient_id,
            appointment_id=appt.id,
            dial="1" if appt.patient.phone else None,
        )
    )


@bp.get(f"/phone/patient/<{ROW_ID}:patient_id>")
def patient_call(patient_id: int):  # type: ignore[no-untyped-def]
    patient = db().get(Patient, patient_id)
    if patient is None:
        abort(404)
    return redirect(
        url_for(
            "phone.window",
            number=patient.phone or "",
            patient_id=patient.id,
            dial="1" if patient.phone else None,
        )
    )


@bp.get("/phone/find")
def find():  # type: ignore[no-untyped-def]
    """«Найти пациента»: a number (≥ 10 digits: matched on the last 10) or a name."""
    q = (request.args.get("q") or "").strip()
    if not q:
        return jsonify({"patients": [], "error": "Введите номер телефона или фамилию"})
    if len(match_key(q)) == 10:
        rows = calls_svc.find_patients_by_number(db(), q, limit=10)
    else:
        # the patients page's search: SQLite does not fold Cyrillic case, it does
        rows = search_patients(db(), q, limit=20)
    now = clinic_now(db())  # upcoming appointments are in the clinic's wall clock
    return jsonify(
        {
            "patients": [
                {
                    **calls_svc.patient_summary(db(), p, now),
                    "phone_e164": p.phone or "",
                    "url": url_for("patients.card", patient_id=p.id),
                }
                for p in rows
            ]
        }
    )


# ------------------------------------------------------------------------ JSON commands


# The commands and their bodies are the contract's (clinic/call_control.py), the list ari_app
# builds its routes from: only those go through, each with only its own fields.


@bp.get("/phone/api/calls")
def active_calls():  # type: ignore[no-untyped-def]
    return _proxy("GET", CALLS_PATH)


@bp.post("/phone/api/calls")
def dial():  # type: ignore[no-untyped-def]
    data = json_object_body()
    return _proxy("POST", CALLS_PATH, {k: data[k] for k in DIAL_FIELDS if data.get(k)})


@bp.post("/phone/api/calls/<uid>/<path:command>")
def command(uid: str, command: str):  # type: ignore[no-untyped-def]
    cmd = parse_command(command)
    if cmd is None or not uid.isalnum():
        abort(404)
    data = json_object_body() if request.data else {}
    return _proxy("POST", command_path(uid, cmd), {k: data[k] for k in body_fields(cmd) if k in data})


@bp.get("/phone/api/phone-calls")
def phone_calls():  # type: ignore[no-untyped-def]
    return _proxy("GET", PHONE_CALLS_PATH)


@bp.post("/phone/api/phone-calls/<channel_id>/adopt")
def adopt(channel_id: str):  # type: ignore[no-untyped-def]
    if not channel_id.replace(".", "").replace("-", "").isalnum():
        abort(404)
    return _proxy("POST", f"{PHONE_CALLS_PATH}/{channel_id}/adopt")


@bp.get("/phone/events-token")
def events_token():  # type: ignore[no-untyped-def]
    """Where the page opens its live events and the short-lived token it shows there: the
    stream is served by ari_app itself (ari_app/events_gateway.py), not by a web thread."""
    user = current_user()
    if user is None:
        abort(401)
    config = _config()
    token = make_token(config.secret_key, user.id, user.session_epoch or 0)
    return jsonify({"url": f"{config.events_url}/events", "token": token})


@bp.get("/phone/api/presence")
def presence():  # type: ignore[no-untyped-def]
    """The directory: every active colleague with a phone, from the database (so the list is
    there without ari_app), with his phone's state from ari_app, or «нет данных» when it
    cannot tell. Names and extensions only: nothing of anyone's SIP account."""
    answer: dict[str, Any] = {}
    states: dict[int, dict[str, Any]] = {}
    try:
        with _control(3.0) as client:
            resp = client.get(PRESENCE_PATH, headers={"X-Actor-Id": str(_user_id())})
        if resp.status_code == 200:
            answer = resp.json()
            states = {int(u["id"]): u for u in answer.get("users") or ()}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass  # ari_app away: every state is unknown, the list is still the clinic's
    unknown = PresenceState.UNKNOWN
    users = db().scalars(select(User).where(User.is_active.is_(True))).all()
    people = sorted((u for u in users if u.has_telephony), key=lambda u: (len(u.extension), u.extension))
    rows = []
    for u in people:
        known = states.get(u.id) or {}
        rows.append(
            {
                "id": u.id,
                "name": u.full_name or u.login,
                "extension": u.extension,
                "state": str(known.get("state") or unknown.value),
                "title": str(known.get("title") or PRESENCE_TITLES[unknown]),
                "seq": int(known.get("seq") or 0),
            }
        )
    return jsonify(
        {"available": bool(answer.get("available")), "epoch": str(answer.get("epoch") or ""), "users": rows}
    )


# ----------------------------------------------------------------------------- call log


def _log_rows(calls: list[Call]) -> list[dict[str, Any]]:
    names = calls_svc.user_names(db())
    patients = {
        p.id: p.full_name
        for p in db()
        .scalars(select(Patient).where(Patient.id.in_({c.patient_id for c in calls if c.patient_id})))
        .all()
    }
    rows = []
    for call in calls:
        row = calls_svc.call_row(call, names)
        row["patient"] = patients.get(call.patient_id or 0, "")
        # the clinic's clock, whatever zone the server runs in
        started = to_clinic(call.started_at, request_zone()) if call.started_at else None
        row["started"] = started.strftime("%d.%m.%Y %H:%M:%S") if started else ""
        rows.append(row)
    return rows


@bp.get("/calls")
def call_log():  # type: ignore[no-untyped-def]
    user = current_user()
    assert user is not None
    calls = calls_svc.call_log(db(), calls_svc.LogFilter(user_id=None if user.is_admin else user.id))
    return render_template(
        "phone/log.html",
        rows=_log_rows(calls),
        title="Журнал звонков",
        missed=False,
        directions=DIRECTIONS,
        results=CALL_RESULTS,
    )


@bp.get("/calls/missed")
def missed():  # type: ignore[no-untyped-def]
    calls = calls_svc.missed_calls(db(), None)
    return render_template(
        "phone/log.html",
        rows=_log_rows(calls),
        title="Пропущенные звонки",
        missed=True,
        directions=DIRECTIONS,
        results=CALL_RESULTS,
    )


@bp.get(f"/calls/recordings/<{ROW_ID}:recording_id>")
def recording(recording_id: int):  # type: ignore[no-untyped-def]
    user = current_user()
    assert user is not None
    rec = db().get(CallRecording, recording_id)
    if rec is None:
        abort(404)
    call = db().get(Call, rec.call_id)
    if not user.is_admin and (call is None or call.user_id != user.id):
        abort(403)
    try:
        with _control(30.0) as client:
            resp = client.get(f"{RECORDINGS_PATH}/{rec.name}", headers={"X-Actor-Id": str(user.id)})
    except httpx.HTTPError:
        abort(503)
    if resp.status_code != 200:
        abort(404)
    return Response(
        resp.content,
        content_type="audio/wav",
        headers={"Content-Disposition": f'inline; filename="{rec.name}.wav"'},
    )


def patient_calls(patient: Patient) -> list[dict[str, Any]]:
    """For the patient card: this patient's calls (registrars see their own, admins all)."""
    user = current_user()
    if user is None:
        return []
    flt = calls_svc.LogFilter(patient_id=patient.id, user_id=None if user.is_admin else user.id, limit=50)
    return _log_rows(calls_svc.call_log(db(), flt))


def register(app: Flask) -> None:
    """Blueprint, menu entries, the scheduler's «Позвонить» action and the card's calls."""
    from webhooks.ui import softphone, trunk
    from webhooks.ui.menu import GROUP_PHONE, add_appointment_action, add_menu_item

    app.register_blueprint(bp)
    trunk.register(app)
    softphone.register(app)
    add_menu_item(app, "Прием по телефону", "phone.window", group=GROUP_PHONE)
    add_menu_item(app, "Журнал звонков", "phone.call_log", group=GROUP_PHONE)
    add_menu_item(app, "Пропущенные", "phone.missed", group=GROUP_PHONE)
    add_appointment_action(app, "Позвонить пациенту", "phone.appointment")
    app.jinja_env.globals["patient_calls"] = patient_calls
    app.jinja_env.filters.setdefault("phone_display", display)
