"""Blueprint `admin_settings`: «ЛПУ → Параметры» (tabs «Реквизиты», «Сервис», «Безопасность»).

A change of the SIP domain, SIP port or RTP range is first given to Asterisk (the applier
renders the entered values in place of the stored ones) and saved only when Asterisk took
it: a change Asterisk rejects leaves the database and the running Asterisk as they were,
and the form comes back with the entered values and Asterisk's reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from clinic.models import ClinicSettings
from clinic.pbx_port import ApplyResult, PbxApplier
from clinic.security import mask
from clinic.services import ValidationError
from clinic.services.settings import (
    ALL_FIELDS,
    CLEAR_SMS_KEY,
    REQUISITES_FIELDS,
    RUSSIAN_TIMEZONES,
    SECURITY_FIELDS,
    SERVICE_FIELDS,
    SettingsChange,
    check_update,
    get_settings,
    port_plan,
    save_change,
)
from webhooks.auth import current_user, require_admin
from webhooks.ui.db import db
from webhooks.ui.pbx import FAILED, NOT_CONNECTED, apply_telephony

log = logging.getLogger(__name__)

bp = Blueprint("admin_settings", __name__, url_prefix="/admin/settings")
bp.before_request(require_admin)

# Not a field: the error Asterisk gave for the telephony values, shown in «IP-телефония».
PBX_ERROR = "pbx"
TABS = (
    ("requisites", "Реквизиты", REQUISITES_FIELDS),
    ("service", "Сервис", SERVICE_FIELDS + (CLEAR_SMS_KEY, PBX_ERROR)),
    ("security", "Безопасность", SECURITY_FIELDS),
)
CHECKBOXES = frozenset({"lockout_enabled", "strong_passwords", CLEAR_SMS_KEY})
SECRET_FIELDS = frozenset({"sms_api_key"})  # never written back into the page


def _tab(raw: str | None) -> str:
    return raw if raw in {key for key, _, _ in TABS} else TABS[0][0]


def _stored_values(row: ClinicSettings) -> dict[str, object]:
    return {field: getattr(row, field) for field in ALL_FIELDS if field not in SECRET_FIELDS}


def _render(
    row: ClinicSettings, values: dict[str, object], errors: dict[str, str], tab: str, status: int = 200
):  # type: ignore[no-untyped-def]
    error_tabs = {key for key, _, fields in TABS if errors.keys() & set(fields)}
    if error_tabs and tab not in error_tabs:
        tab = next(key for key, _, _ in TABS if key in error_tabs)
    zones = list(RUSSIAN_TIMEZONES)
    current_zone = str(values.get("timezone") or "")
    if current_zone and current_zone not in dict(zones):
        zones.append((current_zone, current_zone))
    page = render_template(
        "admin/settings.html",
        tabs=TABS,
        active_tab=tab,
        error_tabs=error_tabs,
        values=values,
        errors=errors,
        sms_key_masked=mask(row.sms_api_key),
        timezones=zones,
        plan=port_plan(db(), current_app.config["MIS"]),
    )
    return page, status


@bp.get("")
def edit():  # type: ignore[no-untyped-def]
    row = get_settings(db())
    db().commit()  # keeps the row created on first visit
    return _render(row, _stored_values(row), {}, _tab(request.args.get("tab")))


def _form_data() -> dict[str, object]:
    data: dict[str, object] = {}
    for field in ALL_FIELDS + (CLEAR_SMS_KEY,):
        if field in CHECKBOXES:
            data[field] = field in request.form
        else:
            data[field] = request.form.get(field, "")
    return data


def _author_id() -> int | None:
    user = current_user()
    return user.id if user else None


@dataclass(frozen=True)
class PbxAnswer:
    result: ApplyResult | None  # None: no PBX connected, the values take effect on its next apply
    refusal: str = ""  # why the values must not be saved (Russian); "" = save them
    status: int = 422


def _try_on_pbx(change: SettingsChange) -> PbxAnswer:
    """Give the entered telephony values to Asterisk before saving them."""
    applier: PbxApplier | None = current_app.extensions.get("mis_pbx_apply")
    if applier is None:
        return PbxAnswer(None)
    try:
        result = applier(_author_id(), pending=change.telephony)
    except Exception:
        log.exception("PBX apply failed")
        return PbxAnswer(None, f"Параметры телефонии не сохранены. {FAILED}", 503)
    if result.ok:
        return PbxAnswer(result)
    refusal = f"Asterisk не принял новые параметры телефонии, они не сохранены. {result.message}"
    return PbxAnswer(result, refusal)


def _refused(data: dict[str, object], errors: dict[str, str], tab: str, status: int):  # type: ignore[no-untyped-def]
    db().rollback()
    entered = {k: v for k, v in data.items() if k not in SECRET_FIELDS}
    return _render(get_settings(db()), entered, errors, tab, status)


@bp.post("")
def save():  # type: ignore[no-untyped-def]
    session = db()
    data = _form_data()
    tab = _tab(request.form.get("tab"))
    try:
        change = check_update(session, data, port_plan(session, current_app.config["MIS"]))
    except ValidationError as exc:
        return _refused(data, exc.errors, tab, 422)
    session.rollback()  # nothing written; no read transaction held while Asterisk reloads
    pbx = _try_on_pbx(change) if change.telephony else PbxAnswer(None)
    if pbx.refusal:
        return _refused(data, {PBX_ERROR: pbx.refusal}, "service", pbx.status)
    try:
        result = save_change(session, change)
        session.commit()
    except IntegrityError:
        session.rollback()
        flash("Не удалось сохранить: параметры одновременно изменил другой пользователь. Повторите.", "error")
        if pbx.result is not None:
            apply_telephony(_author_id())  # Asterisk back to what the database holds
        return redirect(url_for("admin_settings.edit", tab=tab))
    flash("Параметры сохранены", "success")
    for warning in result.warnings:
        flash(warning, "warning")
    if change.telephony:
        _report_applied(pbx.result)
    return redirect(url_for("admin_settings.edit", tab=tab))


def _report_applied(result: ApplyResult | None) -> None:
    if result is None:
        flash(NOT_CONNECTED, "warning")
        return
    flash(f"АТС: {result.message}", "success")
    if result.warning:
        flash(f"АТС: {result.warning}", "warning")
