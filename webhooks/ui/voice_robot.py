"""The own voice robot's pages («Голосовой робот (Asterisk)»).

Blueprint `voice_robot` (registrars and admins):
  /robot/own                      campaigns: start one for a date, the recent ones
  /robot/own/<id>                 a campaign's progress and outcomes (phones, calls, answers)
  /robot/own/<id>/pause|resume    POST
  /robot/own/unreached            «Не дозвонились»: one click calls the patient back
  /robot/own/unreached/<id>/callback   POST: noted, then the phone window dials him
Blueprint `voice_robot_admin` (admin only): /admin/voice-robot — channels, retries, hours.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for

from clinic.clock import clinic_now
from clinic.config import Config
from clinic.models import utcnow
from clinic.models.voice_robot import CAMPAIGN_PAUSED, CAMPAIGN_RUNNING, OUTCOMES
from clinic.services import ValidationError
from clinic.voice_robot import campaigns
from clinic.voice_robot import settings as robot_settings
from webhooks.auth import current_user, require_admin
from webhooks.ui.db import ROW_ID, db

bp = Blueprint("voice_robot", __name__, url_prefix="/robot/own")
admin_bp = Blueprint("voice_robot_admin", __name__, url_prefix="/admin")
admin_bp.before_request(require_admin)

SETTING_FIELDS = (*robot_settings.INT_FIELDS, "hours_from", "hours_to", "greeting")
LABELS = {
    **{k: v[0] for k, v in robot_settings.INT_FIELDS.items()},
    "hours_from": "Звонить с",
    "hours_to": "Звонить до",
    "greeting": "Приветствие",
    "send_sms": "Не дозвонились — отправить СМС с записью",
    "inbound_confirm": "Входящий звонок пациента: сначала предложить подтвердить запись",
}


def _wake() -> None:
    """Tell ari_app's dialer to look now (it looks every second anyway)."""
    pbx = current_app.config["MIS"].pbx if isinstance(current_app.config.get("MIS"), Config) else None
    if pbx is None:
        return
    with contextlib.suppress(httpx.HTTPError):  # ari_app down: the campaign starts when it is back
        httpx.post(
            pbx.control_url + "/robot/wake",
            headers={"X-Control-Token": pbx.control_token},
            timeout=2.0,
            trust_env=False,
        )


@bp.get("")
def index():  # type: ignore[no-untyped-def]
    session = db()
    tomorrow = clinic_now(session).date() + timedelta(days=1)
    return render_template(
        "robot/own_campaigns.html",
        campaigns=campaigns.recent(session),
        default_date=tomorrow.isoformat(),
        errors={},
    )


@bp.post("")
def start():  # type: ignore[no-untyped-def]
    session = db()
    raw = request.form.get("visit_date", "").strip()
    try:
        visit_date = date.fromisoformat(raw)
    except ValueError:
        visit_date = None
    errors: dict[str, str] = {}
    if visit_date is None:
        errors = {"visit_date": "Укажите дату приёмов в виде ДД.ММ.ГГГГ"}
    elif visit_date < clinic_now(session).date():
        errors = {"visit_date": "Дата приёмов уже прошла"}
    if not errors:
        user = current_user()
        try:
            campaign = campaigns.create(session, visit_date, user.id if user else None, utcnow())  # type: ignore[arg-type]
            session.commit()
        except ValidationError as exc:
            session.rollback()
            errors = exc.errors
    if errors:
        return render_template(
            "robot/own_campaigns.html", campaigns=campaigns.recent(session), default_date=raw, errors=errors
        ), 422
    _wake()
    flash(f"Обзвон №{campaign.id} запущен", "success")
    return redirect(url_for("voice_robot.campaign", campaign_id=campaign.id))


@bp.get(f"/<{ROW_ID}:campaign_id>")
def campaign(campaign_id: int):  # type: ignore[no-untyped-def]
    progress = campaigns.progress(db(), campaign_id)
    if progress is None:
        abort(404)
    return render_template("robot/own_campaign.html", p=progress, outcomes=OUTCOMES)


@bp.post(f"/<{ROW_ID}:campaign_id>/<any(pause, resume):action>")
def change(campaign_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db()
    try:
        campaigns.set_state(session, campaign_id, CAMPAIGN_PAUSED if action == "pause" else CAMPAIGN_RUNNING)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(next(iter(exc.errors.values())), "error")
        return redirect(url_for("voice_robot.campaign", campaign_id=campaign_id))
    if action == "resume":
        _wake()
    flash("Обзвон приостановлен" if action == "pause" else "Обзвон продолжен", "success")
    return redirect(url_for("voice_robot.campaign", campaign_id=campaign_id))


@bp.get("/unreached")
def unreached():  # type: ignore[no-untyped-def]
    return render_template("robot/own_unreached.html", rows=campaigns.unreached(db()))


@bp.post(f"/unreached/<{ROW_ID}:phone_id>/callback")
def callback(phone_id: int):  # type: ignore[no-untyped-def]
    session = db()
    user = current_user()
    try:
        row = campaigns.mark_called_back(
            session, phone_id, f"{user.login if user else ''} {datetime.now():%d.%m %H:%M}"
        )
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(next(iter(exc.errors.values())), "error")
        return redirect(url_for("voice_robot.unreached"))
    first = row.items[0].appointment_id if row.items else None
    args: dict[str, Any] = {"number": row.phone, "dial": "1"}
    if row.patient_id:
        args["patient_id"] = row.patient_id
    if first:
        args["appointment_id"] = first
    return redirect(url_for("phone.window", **args))


def _values(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in (*SETTING_FIELDS, "send_sms", "inbound_confirm")}


@admin_bp.route("/voice-robot", methods=["GET", "POST"])
def settings():  # type: ignore[no-untyped-def]
    session = db()
    if request.method == "GET":
        return render_template(
            "robot/own_settings.html", values=_values(robot_settings.read(session)), errors={}, labels=LABELS
        )
    values: dict[str, Any] = {k: request.form.get(k, "") for k in SETTING_FIELDS}
    for flag in ("send_sms", "inbound_confirm"):
        values[flag] = "1" if flag in request.form else ""
    try:
        robot_settings.save(session, values)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return render_template(
            "robot/own_settings.html", values=values, errors=exc.errors, labels=LABELS
        ), 422
    flash("Настройки голосового робота сохранены", "success")
    return redirect(url_for("voice_robot_admin.settings"))


def register(app: Flask) -> None:
    from webhooks.ui.menu import GROUP_ROBOT, add_menu_item

    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
    add_menu_item(app, "Обзвон пациентов", "voice_robot.index", group=GROUP_ROBOT)
    add_menu_item(app, "Не дозвонились", "voice_robot.unreached", group=GROUP_ROBOT)
    add_menu_item(app, "Настройки робота", "voice_robot_admin.settings", admin_only=True, group=GROUP_ROBOT)
